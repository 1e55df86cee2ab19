//! tgvisor: a supervised gateway between Telegram user accounts and the
//! applications that drive them.

pub mod supervisor;
