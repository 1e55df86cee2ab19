//! The integration suite: one binary, one module per area.
//! Set `TGVISOR_TEST_DATABASE_URL` to a PostgreSQL admin URL to run it
//! against PostgreSQL (each test gets a fresh database); SQLite otherwise.

mod health;
mod helpers;
mod http;
mod metrics;
mod process;
mod supervision;
