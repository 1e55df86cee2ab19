//! API requests: unwrapping `invokeWithLayer`/`initConnection` and friends,
//! then translating each supported method into calls on the account's sim
//! [`Client`](tgvisor::telegram::Client), and sim errors into `rpc_error`.

use crate::convert;
use crate::session::{ParseError, Reader};
use crate::world::Account;
use grammers_tl_types::{self as tl, Cursor, Deserializable, Identifiable, Serializable};
use std::sync::Arc;
use tgvisor::domain::validation::ChatRef;
use tgvisor::telegram::{
    FloodScope, MediaKind, Message, Peer, PeerKind, SendOptions, TgError, UploadedFile,
};

/// The answer to an unsupported method.
pub const METHOD_NOT_SUPPORTED: &str = "METHOD_NOT_SUPPORTED_BY_FAKE";

/// What to do with a request.
#[derive(Debug)]
pub(crate) enum Reply {
    /// An `rpc_result` carrying this body.
    Result(Vec<u8>),
    /// An `rpc_result` carrying `rpc_error`.
    Error { code: i32, message: String },
    /// A message sent as is, not wrapped in `rpc_result` (`pong`).
    Bare(Vec<u8>),
    /// Close the TCP connection without answering.
    Drop,
}

impl Reply {
    fn ok(value: &impl Serializable) -> Self {
        Self::Result(value.to_bytes())
    }

    fn error(code: i32, message: impl Into<String>) -> Self {
        Self::Error {
            code,
            message: message.into(),
        }
    }

    fn bad_request() -> Self {
        Self::error(400, "INPUT_REQUEST_INVALID")
    }
}

/// How Telegram reports each sim error.
impl From<TgError> for Reply {
    fn from(e: TgError) -> Self {
        match e {
            TgError::FloodWait {
                seconds,
                scope: FloodScope::Account,
            } => Self::error(420, format!("FLOOD_WAIT_{seconds}")),
            TgError::FloodWait {
                seconds,
                scope: FloodScope::Chat { .. },
            } => Self::error(420, format!("SLOWMODE_WAIT_{seconds}")),
            TgError::PeerInvalid => Self::error(400, "PEER_ID_INVALID"),
            TgError::Unauthorized => Self::error(401, "AUTH_KEY_UNREGISTERED"),
            TgError::Revoked => Self::error(401, "SESSION_REVOKED"),
            TgError::AuthKeyDuplicated => Self::error(406, "AUTH_KEY_DUPLICATED"),
            TgError::Banned => Self::error(401, "USER_DEACTIVATED_BAN"),
            TgError::PhoneNumberInvalid => Self::error(400, "PHONE_NUMBER_INVALID"),
            TgError::CodeInvalid => Self::error(400, "PHONE_CODE_INVALID"),
            TgError::CodeExpired => Self::error(400, "PHONE_CODE_EXPIRED"),
            TgError::PasswordInvalid => Self::error(400, "PASSWORD_HASH_INVALID"),
            TgError::BadRequest(name) => Self::error(400, name),
            // Telegram's own code for a call that timed out inside it.
            TgError::Timeout(_) => Self::error(-503, "Timeout"),
            TgError::Other { code, name } => Self::error(if code == 0 { 500 } else { code }, name),
            TgError::Network(_) => Self::Drop,
        }
    }
}

/// `rpc_result#f35c6d01 req_msg_id:long result:Object`.
pub(crate) fn rpc_result(req_msg_id: i64, result: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + result.len());
    out.extend_from_slice(&0xf35c_6d01u32.to_le_bytes());
    out.extend_from_slice(&req_msg_id.to_le_bytes());
    out.extend_from_slice(result);
    out
}

pub(crate) fn rpc_error(code: i32, message: &str) -> Vec<u8> {
    tl::enums::RpcError::Error(tl::types::RpcError {
        error_code: code,
        error_message: message.to_owned(),
    })
    .to_bytes()
}

/// Strips the wrappers grammers (and other clients) put around a method:
/// `invokeWithLayer`, `initConnection`, `invokeWithoutUpdates`,
/// `invokeAfterMsg(s)`, `invokeWithTakeout`. Returns the method's
/// constructor id and its bytes (id included).
pub(crate) fn unwrap_query(mut body: &[u8]) -> Result<(u32, &[u8]), ParseError> {
    loop {
        let mut r = Reader::new(body);
        let id = r.u32()?;
        let skip = match id {
            tl::functions::InvokeWithLayer::<()>::CONSTRUCTOR_ID => 4,
            tl::functions::InvokeWithoutUpdates::<()>::CONSTRUCTOR_ID => 0,
            tl::functions::InvokeAfterMsg::<()>::CONSTRUCTOR_ID
            | tl::functions::InvokeWithTakeout::<()>::CONSTRUCTOR_ID => 8,
            tl::functions::InvokeAfterMsgs::<()>::CONSTRUCTOR_ID => {
                let mut cur = Cursor::from_slice(&body[4..]);
                Vec::<i64>::deserialize(&mut cur).map_err(|_| ParseError::Truncated)?;
                cur.pos()
            }
            tl::functions::InitConnection::<()>::CONSTRUCTOR_ID => init_connection_len(&body[4..])?,
            _ => return Ok((id, body)),
        };
        body = body.get(4 + skip..).ok_or(ParseError::Truncated)?;
    }
}

/// Length of `initConnection`'s fields before its query.
fn init_connection_len(fields: &[u8]) -> Result<usize, ParseError> {
    let mut cur = Cursor::from_slice(fields);
    let parse = |cur: &mut Cursor| -> Result<(), tl::deserialize::Error> {
        let flags = u32::deserialize(cur)?;
        i32::deserialize(cur)?; // api_id
        for _ in 0..6 {
            // device_model … lang_code
            String::deserialize(cur)?;
        }
        if flags & 1 != 0 {
            tl::enums::InputClientProxy::deserialize(cur)?;
        }
        if flags & 2 != 0 {
            tl::enums::Jsonvalue::deserialize(cur)?;
        }
        Ok(())
    };
    parse(&mut cur).map_err(|_| ParseError::Truncated)?;
    Ok(cur.pos())
}

/// The TL name of a constructor, e.g. `messages.sendMessage`.
pub(crate) fn method_name(id: u32) -> String {
    match tl::name_for_id(id) {
        "" | "(unknown)" => format!("0x{id:08x}"),
        name => name.to_owned(),
    }
}

/// One request being answered.
pub(crate) struct Call<'a> {
    pub account: &'a Arc<Account>,
    pub conn_id: u64,
    pub msg_id: i64,
}

fn parse<T: Deserializable>(body: &[u8]) -> Result<T, Reply> {
    let fields = body.get(4..).ok_or_else(Reply::bad_request)?;
    T::from_bytes(fields).map_err(|_| Reply::bad_request())
}

/// Answers one method (its bytes, constructor id included).
pub(crate) async fn dispatch(call: &Call<'_>, method: u32, body: &[u8]) -> Reply {
    let reply = match answer(call, method, body).await {
        Ok(reply) | Err(reply) => reply,
    };
    if matches!(reply, Reply::Drop) {
        call.account.network_failed().await;
    }
    reply
}

async fn answer(call: &Call<'_>, method: u32, body: &[u8]) -> Result<Reply, Reply> {
    use tl::functions as f;
    let account = call.account;
    Ok(match method {
        f::help::GetConfig::CONSTRUCTOR_ID => {
            // Open the sim connection now so the update log starts early
            // (the sim's `connect` call, as SimBackend::connect would make).
            // Telegram answers this even for keys that cannot sign in: those
            // errors wait for the next API call.
            match account.client().await {
                Err(e) if !e.is_session_fatal() => return Err(e.into()),
                _ => Reply::ok(&convert::config(account.dc)),
            }
        }
        f::users::GetUsers::CONSTRUCTOR_ID => {
            let req: f::users::GetUsers = parse(body)?;
            Reply::ok(&get_users(account, &req.id).await?)
        }
        f::contacts::ResolveUsername::CONSTRUCTOR_ID => {
            let req: f::contacts::ResolveUsername = parse(body)?;
            let client = account.client().await?;
            let peer = match client.resolve(&ChatRef::Username(req.username)).await {
                Err(TgError::PeerInvalid) => {
                    return Err(Reply::error(400, "USERNAME_NOT_OCCUPIED"));
                }
                other => other?,
            };
            Reply::ok(&tl::enums::contacts::ResolvedPeer::Peer(
                tl::types::contacts::ResolvedPeer {
                    peer: convert::peer_user(peer.id),
                    chats: Vec::new(),
                    users: vec![convert::user_from_peer(&peer)],
                },
            ))
        }
        f::messages::GetHistory::CONSTRUCTOR_ID => {
            let req: f::messages::GetHistory = parse(body)?;
            Reply::ok(&history(account, &req).await?)
        }
        f::messages::SendMessage::CONSTRUCTOR_ID => {
            let req: f::messages::SendMessage = parse(body)?;
            let peer = peer_of(account, &req.peer)?;
            let opts = send_options(req.reply_to.as_ref(), req.silent, req.random_id);
            let client = account.client().await?;
            let _order = account.feed.order().await;
            let message = client.send_text(&peer, &req.message, &opts).await?;
            Reply::ok(
                &account
                    .feed
                    .record_sent(&message, req.random_id, call.conn_id),
            )
        }
        f::messages::SendMedia::CONSTRUCTOR_ID => {
            let req: f::messages::SendMedia = parse(body)?;
            let peer = peer_of(account, &req.peer)?;
            let (file, kind) = uploaded_media(account, &req.media)?;
            let opts = send_options(req.reply_to.as_ref(), req.silent, req.random_id);
            let client = account.client().await?;
            let _order = account.feed.order().await;
            let message = client
                .send_media(&peer, &file, kind, &req.message, &opts)
                .await?;
            Reply::ok(
                &account
                    .feed
                    .record_sent(&message, req.random_id, call.conn_id),
            )
        }
        f::upload::SaveFilePart::CONSTRUCTOR_ID => {
            let req: f::upload::SaveFilePart = parse(body)?;
            save_part(account, req.file_id, req.file_part, None, &req.bytes).await?
        }
        f::upload::SaveBigFilePart::CONSTRUCTOR_ID => {
            let req: f::upload::SaveBigFilePart = parse(body)?;
            let total = u32::try_from(req.file_total_parts)
                .map_err(|_| Reply::error(400, "FILE_PARTS_INVALID"))?;
            save_part(account, req.file_id, req.file_part, Some(total), &req.bytes).await?
        }
        f::updates::GetState::CONSTRUCTOR_ID => {
            account.client().await?;
            Reply::ok(&account.feed.state())
        }
        f::updates::GetDifference::CONSTRUCTOR_ID => {
            let req: f::updates::GetDifference = parse(body)?;
            account.client().await?;
            Reply::ok(&account.feed.difference(req.pts))
        }
        f::Ping::CONSTRUCTOR_ID => {
            let req: f::Ping = parse(body)?;
            account.client().await?.ping().await?;
            Reply::Bare(pong(call.msg_id, req.ping_id))
        }
        _ => Reply::error(400, METHOD_NOT_SUPPORTED),
    })
}

/// `pong#347773c5 msg_id:long ping_id:long`.
pub(crate) fn pong(msg_id: i64, ping_id: i64) -> Vec<u8> {
    tl::enums::Pong::Pong(tl::types::Pong { msg_id, ping_id }).to_bytes()
}

fn send_options(
    reply_to: Option<&tl::enums::InputReplyTo>,
    silent: bool,
    random_id: i64,
) -> SendOptions {
    SendOptions {
        reply_to: match reply_to {
            Some(tl::enums::InputReplyTo::Message(m)) => Some(m.reply_to_msg_id),
            _ => None,
        },
        silent,
        random_id,
    }
}

/// The sim peer an input peer names. Only users exist in the sim.
fn peer_of(account: &Account, input: &tl::enums::InputPeer) -> Result<Peer, TgError> {
    let user_id = match input {
        tl::enums::InputPeer::PeerSelf => account.user_id,
        tl::enums::InputPeer::User(u) => u.user_id,
        tl::enums::InputPeer::UserFromMessage(u) => u.user_id,
        _ => return Err(TgError::PeerInvalid),
    };
    let own = user_id == account.user_id;
    Ok(Peer {
        id: user_id,
        kind: if own {
            PeerKind::SelfChat
        } else {
            PeerKind::User
        },
        title: String::new(),
        username: None,
    })
}

async fn get_users(
    account: &Account,
    ids: &[tl::enums::InputUser],
) -> Result<Vec<tl::enums::User>, TgError> {
    let client = account.client().await?;
    let mut users = Vec::with_capacity(ids.len());
    for input in ids {
        let user_id = match input {
            tl::enums::InputUser::UserSelf => account.user_id,
            tl::enums::InputUser::User(u) => u.user_id,
            tl::enums::InputUser::FromMessage(u) => u.user_id,
            tl::enums::InputUser::Empty => continue,
        };
        if user_id == account.user_id {
            users.push(convert::user_from_me(&client.get_me().await?, true));
            continue;
        }
        match client.resolve(&ChatRef::Id(user_id)).await {
            Ok(peer) => users.push(convert::user_from_peer(&peer)),
            Err(TgError::PeerInvalid) => {} // Telegram leaves unknown users out
            Err(e) => return Err(e),
        }
    }
    Ok(users)
}

/// Telegram's page size cap for history.
const HISTORY_MAX: usize = 100;

async fn history(
    account: &Account,
    req: &tl::functions::messages::GetHistory,
) -> Result<tl::enums::messages::Messages, TgError> {
    let peer = peer_of(account, &req.peer)?;
    let client = account.client().await?;
    // Newest first. Negative add_offset (grammers' reverse iteration) and
    // offset_date are not modelled.
    let all = client.history(&peer, u32::MAX, None).await?;
    let count = all.len();
    let mut page: Vec<Message> = all
        .into_iter()
        .filter(|m| req.offset_id <= 0 || m.id < req.offset_id)
        .filter(|m| req.max_id <= 0 || m.id < req.max_id)
        .filter(|m| req.min_id <= 0 || m.id > req.min_id)
        .skip(usize::try_from(req.add_offset).unwrap_or(0))
        .collect();
    let limit = usize::try_from(req.limit)
        .ok()
        .filter(|l| *l > 0)
        .map_or(HISTORY_MAX, |l| l.min(HISTORY_MAX));
    let more = page.len() > limit;
    page.truncate(limit);
    let refs: Vec<&Message> = page.iter().collect();
    let users = account.feed.users_for(&refs);
    let messages = page
        .iter()
        .map(|m| convert::message(m, account.dc))
        .collect();
    Ok(if more {
        tl::types::messages::MessagesSlice {
            inexact: false,
            count: i32::try_from(count).unwrap_or(i32::MAX),
            next_rate: None,
            offset_id_offset: None,
            search_flood: None,
            messages,
            topics: Vec::new(),
            chats: Vec::new(),
            users,
        }
        .into()
    } else {
        tl::types::messages::Messages {
            messages,
            topics: Vec::new(),
            chats: Vec::new(),
            users,
        }
        .into()
    })
}

async fn save_part(
    account: &Account,
    file_id: i64,
    part: i32,
    total: Option<u32>,
    bytes: &[u8],
) -> Result<Reply, Reply> {
    let part = u32::try_from(part).map_err(|_| Reply::error(400, "FILE_PART_INVALID"))?;
    let client = account.client().await?;
    client.save_file_part(file_id, part, total, bytes).await?;
    account.record_part(file_id, part, bytes.len());
    Ok(Reply::ok(&true))
}

/// The uploaded file a `sendMedia` refers to, with the size of the parts
/// this account uploaded for it (MTProto does not send the size).
fn uploaded_media(
    account: &Account,
    media: &tl::enums::InputMedia,
) -> Result<(UploadedFile, MediaKind), Reply> {
    let (file, kind) = match media {
        tl::enums::InputMedia::UploadedDocument(d) => (&d.file, MediaKind::Document),
        tl::enums::InputMedia::UploadedPhoto(p) => (&p.file, MediaKind::Photo),
        _ => return Err(Reply::error(400, METHOD_NOT_SUPPORTED)),
    };
    let (file_id, parts, name, big) = match file {
        tl::enums::InputFile::File(f) => (f.id, f.parts, &f.name, false),
        tl::enums::InputFile::Big(f) => (f.id, f.parts, &f.name, true),
        tl::enums::InputFile::StoryDocument(_) => {
            return Err(Reply::error(400, METHOD_NOT_SUPPORTED));
        }
    };
    let parts = u32::try_from(parts).map_err(|_| Reply::error(400, "FILE_PARTS_INVALID"))?;
    Ok((
        UploadedFile {
            file_id,
            parts,
            name: name.clone(),
            size: account.uploaded_size(file_id),
            big,
        },
        kind,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwraps_what_grammers_sends_on_connect() {
        let query = tl::functions::InvokeWithLayer {
            layer: tl::LAYER,
            query: tl::functions::InitConnection {
                api_id: 1,
                device_model: "d".into(),
                system_version: "s".into(),
                app_version: "a".into(),
                system_lang_code: "en".into(),
                lang_pack: "".into(),
                lang_code: "en".into(),
                proxy: None,
                params: Some(tl::enums::Jsonvalue::JsonNull),
                query: tl::functions::help::GetConfig {},
            },
        }
        .to_bytes();
        let (id, inner) = unwrap_query(&query).unwrap();
        assert_eq!(id, tl::functions::help::GetConfig::CONSTRUCTOR_ID);
        assert_eq!(inner, tl::functions::help::GetConfig {}.to_bytes());
        assert_eq!(method_name(id), "help.getConfig");

        let after = tl::functions::InvokeAfterMsgs {
            msg_ids: vec![1, 2],
            query: tl::functions::InvokeWithoutUpdates {
                query: tl::functions::updates::GetState {},
            },
        }
        .to_bytes();
        let (id, _) = unwrap_query(&after).unwrap();
        assert_eq!(method_name(id), "updates.getState");
        assert!(unwrap_query(&query[..10]).is_err());
    }

    #[test]
    fn sim_errors_become_telegram_errors() {
        let cases = [
            (
                TgError::FloodWait {
                    seconds: 7,
                    scope: FloodScope::Account,
                },
                420,
                "FLOOD_WAIT_7",
            ),
            (
                TgError::FloodWait {
                    seconds: 9,
                    scope: FloodScope::Chat { chat_id: 1 },
                },
                420,
                "SLOWMODE_WAIT_9",
            ),
            (TgError::PeerInvalid, 400, "PEER_ID_INVALID"),
            (TgError::Unauthorized, 401, "AUTH_KEY_UNREGISTERED"),
            (TgError::Revoked, 401, "SESSION_REVOKED"),
            (TgError::Banned, 401, "USER_DEACTIVATED_BAN"),
            (
                TgError::BadRequest("MESSAGE_EMPTY".into()),
                400,
                "MESSAGE_EMPTY",
            ),
        ];
        for (error, code, name) in cases {
            match Reply::from(error) {
                Reply::Error { code: c, message } => {
                    assert_eq!((c, message.as_str()), (code, name))
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            Reply::from(TgError::Network("x".into())),
            Reply::Drop
        ));
    }
}
