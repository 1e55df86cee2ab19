//! Sign-in of a new account: send the code, check it, check the 2FA
//! password.
//!
//! The pool starts on a fresh session with Telegram's known DCs and no auth
//! key, so grammers performs the key exchange itself. grammers'
//! `request_login_code` panics on `auth.sentCodeSuccess` and hits
//! `unimplemented!()` on `auth.sentCodePaymentRequired`, and its `LoginToken`
//! cannot be built outside grammers, so `auth.sendCode` and `auth.signIn`
//! are invoked here directly. The SRP password check is grammers'
//! `check_password`, fed with a freshly fetched `account.getPassword` on
//! every attempt (an SRP id is single-use) and run in its own task, so the
//! panics it keeps for malformed server parameters become errors.

use super::convert::{self, map_error};
use super::pool::{Pool, start_pool};
use super::session::TgSession;
use crate::domain::validation::PhoneNumber;
use crate::telegram::{LoginStep, Me, PendingCode, PendingPassword, TgError};
use async_trait::async_trait;
use grammers_client::InvocationError;
use grammers_client::client::{PasswordToken, SignInError};
use grammers_session::Session;
use grammers_session::types::{UpdateState, UpdatesState};
use grammers_tl_types as tl;
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

/// A pool used for one sign-in. Dropping it closes the connection.
struct LoginPool {
    pool: Pool,
    session: Arc<TgSession>,
    timeout: Duration,
}

impl Drop for LoginPool {
    fn drop(&mut self) {
        self.pool.handle.quit();
    }
}

impl LoginPool {
    async fn call<R: tl::RemoteCall>(&self, request: &R) -> Result<R::Return, InvocationError> {
        match tokio::time::timeout(self.timeout, self.pool.client.invoke(request)).await {
            Ok(r) => r,
            Err(_) => Err(InvocationError::Dropped("timed out")),
        }
    }

    /// Invokes, following one DC migration (303 PHONE_MIGRATE_X and friends).
    async fn call_migrating<R: tl::RemoteCall>(
        &self,
        request: &R,
    ) -> Result<R::Return, InvocationError> {
        match self.call(request).await {
            Err(InvocationError::Rpc(e)) if e.code == 303 => {
                let Some(new_dc) = e.value.and_then(|v| i32::try_from(v).ok()) else {
                    return Err(InvocationError::Rpc(e));
                };
                let old_dc = self.session.home_dc_id().unwrap_or(new_dc);
                self.pool.handle.disconnect_from_dc(old_dc);
                let _ = self.session.set_home_dc_id(new_dc).await;
                self.call(request).await
            }
            other => other,
        }
    }

    fn map(&self, e: &InvocationError) -> TgError {
        match e {
            InvocationError::Dropped("timed out") => TgError::Timeout(self.timeout),
            e => map_error(e, None),
        }
    }

    /// Records the signed-in user and the update state; the session to store.
    async fn finish(&self, user: &tl::enums::User) -> Result<LoginStep, TgError> {
        let tl::enums::User::User(u) = user else {
            return Err(TgError::Unauthorized);
        };
        self.session.set_self(u.id, u.access_hash);
        self.session
            .remember(convert::users_to_peers(std::slice::from_ref(user)));
        // Start catching up from now on (grammers does the same).
        if let Ok(tl::enums::updates::State::State(s)) =
            self.call(&tl::functions::updates::GetState {}).await
        {
            let _ = self
                .session
                .set_update_state(UpdateState::All(UpdatesState {
                    pts: s.pts,
                    qts: s.qts,
                    date: s.date,
                    seq: s.seq,
                    channels: Vec::new(),
                }))
                .await;
        }
        Ok(LoginStep::Done {
            session: self.session.snapshot(),
            me: Me {
                id: u.id,
                username: u.username.clone(),
                first_name: u.first_name.clone().unwrap_or_default(),
                premium: u.premium,
            },
        })
    }
}

/// Starts a sign-in: connects without a key and asks Telegram for a code.
pub(super) async fn request_code(
    api_id: i32,
    api_hash: Option<&SecretString>,
    timeout: Duration,
    phone: &PhoneNumber,
) -> Result<Box<dyn PendingCode>, TgError> {
    let Some(api_hash) = api_hash else {
        tracing::error!("telegram.api_hash is not configured: cannot sign in");
        return Err(TgError::Other {
            code: 0,
            name: "API_HASH_MISSING".into(),
        });
    };
    let session = TgSession::fresh();
    let pool = start_pool(session.clone(), api_id);
    let login = LoginPool {
        pool,
        session,
        timeout,
    };
    let request = tl::functions::auth::SendCode {
        phone_number: phone.as_e164().to_owned(),
        api_id,
        api_hash: api_hash.expose_secret().to_owned(),
        settings: tl::enums::CodeSettings::Settings(tl::types::CodeSettings {
            allow_flashcall: false,
            current_number: false,
            allow_app_hash: false,
            allow_missed_call: false,
            allow_firebase: false,
            unknown_number: false,
            logout_tokens: None,
            token: None,
            app_sandbox: None,
        }),
    };
    let sent = login
        .call_migrating(&request)
        .await
        .map_err(|e| login.map(&e))?;
    let phone_code_hash = sent_code_hash(sent)?;
    Ok(Box::new(GrammersPendingCode {
        login,
        phone: Zeroizing::new(phone.as_e164().to_owned()),
        phone_code_hash,
    }))
}

/// The code hash from `auth.sendCode`'s answer; the answers grammers
/// cannot handle become errors.
fn sent_code_hash(sent: tl::enums::auth::SentCode) -> Result<String, TgError> {
    match sent {
        tl::enums::auth::SentCode::Code(c) => Ok(c.phone_code_hash),
        // Only with a future-auth token, which tgvisor never sends.
        tl::enums::auth::SentCode::Success(_) => Err(TgError::Other {
            code: 0,
            name: "SENT_CODE_SUCCESS_UNEXPECTED".into(),
        }),
        tl::enums::auth::SentCode::PaymentRequired(_) => Err(TgError::Other {
            code: 0,
            name: "PAYMENT_REQUIRED".into(),
        }),
    }
}

/// Whether a failed step can be tried again with the same pending sign-in.
fn keeps_pending(e: &TgError) -> bool {
    e.is_transient() || matches!(e, TgError::CodeInvalid | TgError::PasswordInvalid)
}

struct GrammersPendingCode {
    login: LoginPool,
    phone: Zeroizing<String>,
    phone_code_hash: String,
}

#[async_trait]
impl PendingCode for GrammersPendingCode {
    async fn submit_code(
        self: Box<Self>,
        code: &str,
    ) -> Result<LoginStep, (TgError, Option<Box<dyn PendingCode>>)> {
        let request = tl::functions::auth::SignIn {
            phone_number: self.phone.to_string(),
            phone_code_hash: self.phone_code_hash.clone(),
            phone_code: Some(code.trim().to_owned()),
            email_verification: None,
        };
        match self.login.call(&request).await {
            Ok(tl::enums::auth::Authorization::Authorization(a)) => {
                self.login.finish(&a.user).await.map_err(|e| (e, None))
            }
            Ok(tl::enums::auth::Authorization::SignUpRequired(_)) => Err((
                TgError::Other {
                    code: 400,
                    name: "SIGN_UP_REQUIRED".into(),
                },
                None,
            )),
            Err(e) if e.is("SESSION_PASSWORD_NEEDED") => {
                match self
                    .login
                    .call(&tl::functions::account::GetPassword {})
                    .await
                {
                    Ok(tl::enums::account::Password::Password(p)) => {
                        Ok(LoginStep::PasswordNeeded {
                            hint: p.hint.clone(),
                            pending: Box::new(GrammersPendingPassword { login: self.login }),
                        })
                    }
                    Err(e) => {
                        let err = self.login.map(&e);
                        // The code was right: the password step can be
                        // reached again only with a new sign-in.
                        Err((err, None))
                    }
                }
            }
            Err(e) => {
                let err = self.login.map(&e);
                if keeps_pending(&err) {
                    Err((err, Some(self)))
                } else {
                    Err((err, None))
                }
            }
        }
    }
}

struct GrammersPendingPassword {
    login: LoginPool,
}

/// Whether Telegram's password parameters are complete enough for grammers'
/// SRP code (which unwraps them).
fn srp_ready(p: &tl::types::account::Password) -> bool {
    matches!(
        p.current_algo,
        Some(tl::enums::PasswordKdfAlgo::Sha256Sha256Pbkdf2Hmacsha512iter100000Sha256ModPow(_))
    ) && p.srp_b.is_some()
        && p.srp_id.is_some()
}

#[async_trait]
impl PendingPassword for GrammersPendingPassword {
    async fn submit_password(
        self: Box<Self>,
        password: SecretString,
    ) -> Result<LoginStep, (TgError, Option<Box<dyn PendingPassword>>)> {
        // A fresh SRP challenge for every attempt.
        let info = match self
            .login
            .call(&tl::functions::account::GetPassword {})
            .await
        {
            Ok(tl::enums::account::Password::Password(p)) => p,
            Err(e) => {
                let err = self.login.map(&e);
                let keep = keeps_pending(&err);
                return Err((err, keep.then_some(self as Box<dyn PendingPassword>)));
            }
        };
        if !srp_ready(&info) {
            return Err((
                TgError::Other {
                    code: 0,
                    name: "PASSWORD_ALGO_UNSUPPORTED".into(),
                },
                None,
            ));
        }
        let client = self.login.pool.client.clone();
        let secret = Zeroizing::new(password.expose_secret().as_bytes().to_vec());
        let task = tokio::spawn(async move {
            client
                .check_password(PasswordToken::new(info), secret.as_slice())
                .await
        });
        let result = match tokio::time::timeout(self.login.timeout, task).await {
            Err(_) => return Err((TgError::Timeout(self.login.timeout), Some(self))),
            Ok(Err(_)) => {
                tracing::error!("grammers' password check panicked");
                return Err((
                    TgError::Other {
                        code: 0,
                        name: "PASSWORD_CHECK_FAILED".into(),
                    },
                    None,
                ));
            }
            Ok(Ok(r)) => r,
        };
        match result {
            Ok(user) => self.login.finish(&user.raw).await.map_err(|e| (e, None)),
            Err(SignInError::InvalidPassword(_)) => Err((TgError::PasswordInvalid, Some(self))),
            Err(SignInError::Other(e)) => {
                let err = self.login.map(&e);
                let keep = keeps_pending(&err);
                Err((err, keep.then_some(self as Box<dyn PendingPassword>)))
            }
            Err(_) => Err((
                TgError::Other {
                    code: 0,
                    name: "SIGN_IN_FAILED".into(),
                },
                None,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_code_answers_grammers_would_panic_on_are_errors() {
        let success = tl::enums::auth::SentCode::Success(tl::types::auth::SentCodeSuccess {
            authorization: tl::enums::auth::Authorization::SignUpRequired(
                tl::types::auth::AuthorizationSignUpRequired {
                    terms_of_service: None,
                },
            ),
        });
        assert!(matches!(
            sent_code_hash(success),
            Err(TgError::Other { ref name, .. }) if name == "SENT_CODE_SUCCESS_UNEXPECTED"
        ));
        let code = tl::enums::auth::SentCode::Code(tl::types::auth::SentCode {
            r#type: tl::enums::auth::SentCodeType::Sms(tl::types::auth::SentCodeTypeSms {
                length: 5,
            }),
            phone_code_hash: "h".into(),
            next_type: None,
            timeout: None,
        });
        assert_eq!(sent_code_hash(code), Ok("h".to_owned()));
    }

    #[test]
    fn wrong_codes_and_network_errors_keep_the_sign_in() {
        assert!(keeps_pending(&TgError::CodeInvalid));
        assert!(keeps_pending(&TgError::PasswordInvalid));
        assert!(keeps_pending(&TgError::Network("x".into())));
        assert!(!keeps_pending(&TgError::CodeExpired));
        assert!(!keeps_pending(&TgError::Banned));
    }
}
