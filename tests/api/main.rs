//! The integration suite: one binary, one module per area.
//! Set `TGVISOR_TEST_DATABASE_URL` to a PostgreSQL admin URL to run it
//! against PostgreSQL (each test gets a fresh database); SQLite otherwise.

mod accounts;
mod alerts;
mod auth;
mod bench_events;
mod dashboards;
mod dedupe;
mod docs;
mod errors;
mod events;
mod exactly_once;
mod grammers;
mod grammers_accounts;
mod health;
mod health_faults;
mod helpers;
mod http;
mod limits;
mod logs;
mod metrics;
mod openapi;
mod outbox;
mod probes;
mod process;
mod sessions;
mod single_process;
mod slow_clients;
mod supervised_tasks;
mod supervision;
mod telegram;
mod update_state;
mod uploads;
mod ws;
