//! The simulated sign-in: the code sent to a sim number, the two-step
//! password, and the session a finished sign-in yields.

use super::conventions::{CODE_TTL, SIM_2FA_PASSWORD, parse_sim_phone};
use super::world::SimWorld;
use crate::domain::validation::PhoneNumber;
use crate::telegram::{LoginStep, PendingCode, PendingPassword, TgError};
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

/// Starts a sign-in: checks the number against the sim's conventions and
/// bans, and returns the login waiting for the code.
pub(super) async fn request_code(
    world: &SimWorld,
    phone: &PhoneNumber,
) -> Result<Box<dyn PendingCode>, TgError> {
    world.call(None, "auth.sendCode", None).await?;
    let (dc, code, two_factor) =
        parse_sim_phone(phone.as_e164()).ok_or(TgError::PhoneNumberInvalid)?;
    let banned = {
        let state = world.lock();
        state
            .by_phone
            .get(phone.as_e164())
            .and_then(|id| state.users.get(id))
            .is_some_and(|u| u.banned)
    };
    if banned {
        return Err(TgError::Banned);
    }
    Ok(Box::new(SimPendingCode {
        world: world.clone(),
        phone: phone.as_e164().to_owned(),
        dc,
        code,
        two_factor,
        expires: tokio::time::Instant::now() + CODE_TTL,
    }))
}

struct SimPendingCode {
    world: SimWorld,
    phone: String,
    dc: i32,
    code: String,
    two_factor: bool,
    expires: tokio::time::Instant,
}

#[async_trait]
impl PendingCode for SimPendingCode {
    async fn submit_code(
        self: Box<Self>,
        code: &str,
    ) -> Result<LoginStep, (TgError, Option<Box<dyn PendingCode>>)> {
        if let Err(e) = self.world.call(None, "auth.signIn", None).await {
            return Err((e, Some(self)));
        }
        if tokio::time::Instant::now() >= self.expires {
            return Err((TgError::CodeExpired, None));
        }
        if code.trim() != self.code {
            return Err((TgError::CodeInvalid, Some(self)));
        }
        if self.two_factor {
            return Ok(LoginStep::PasswordNeeded {
                hint: Some("the sim password".to_owned()),
                pending: Box::new(SimPendingPassword {
                    world: self.world.clone(),
                    phone: self.phone.clone(),
                    dc: self.dc,
                }),
            });
        }
        Ok(finish(&self.world, &self.phone, self.dc))
    }
}

fn finish(world: &SimWorld, phone: &str, dc: i32) -> LoginStep {
    let mut state = world.lock();
    let user_id = state.sign_up(phone);
    let session = state.new_session(user_id, dc);
    LoginStep::Done {
        session,
        me: state.me(user_id),
    }
}

struct SimPendingPassword {
    world: SimWorld,
    phone: String,
    dc: i32,
}

#[async_trait]
impl PendingPassword for SimPendingPassword {
    async fn submit_password(
        self: Box<Self>,
        password: SecretString,
    ) -> Result<LoginStep, (TgError, Option<Box<dyn PendingPassword>>)> {
        if let Err(e) = self.world.call(None, "auth.checkPassword", None).await {
            return Err((e, Some(self)));
        }
        if password.expose_secret() != SIM_2FA_PASSWORD {
            return Err((TgError::PasswordInvalid, Some(self)));
        }
        Ok(finish(&self.world, &self.phone, self.dc))
    }
}
