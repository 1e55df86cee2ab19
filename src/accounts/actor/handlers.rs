//! How an [`AccountActor`] answers its [`messages`](super::messages).

use super::AccountActor;
use super::messages::{AccountWideTgError, CallError, GetState, History, Rotate, SavePart};
use crate::telegram::{Message, TgError};
use actix::prelude::*;

impl Handler<History> for AccountActor {
    type Result = ResponseActFuture<Self, Result<Vec<Message>, CallError>>;

    fn handle(&mut self, msg: History, _: &mut Context<Self>) -> Self::Result {
        let client = match self.connected_client() {
            Ok(c) => c,
            Err(e) => return Box::pin(actix::fut::ready(Err(e))),
        };
        let timeout = self.deps.request_timeout;
        let peers = self.peers.clone();
        let fut = async move {
            let run = async {
                let peer =
                    crate::outbox::drain::resolve(client.as_ref(), &peers, &msg.chat).await?;
                client.history(&peer, msg.limit, msg.before).await
            };
            tokio::time::timeout(timeout, run)
                .await
                .unwrap_or(Err(TgError::Timeout(timeout)))
        };
        Box::pin(
            actix::fut::wrap_future(fut).map(|res, act: &mut Self, ctx| {
                if let Err(e) = &res {
                    act.note_error(e, ctx);
                }
                res.map_err(CallError::Telegram)
            }),
        )
    }
}

impl Handler<SavePart> for AccountActor {
    type Result = ResponseActFuture<Self, Result<(), CallError>>;

    fn handle(&mut self, msg: SavePart, _: &mut Context<Self>) -> Self::Result {
        let client = match self.connected_client() {
            Ok(c) => c,
            Err(e) => return Box::pin(actix::fut::ready(Err(e))),
        };
        let timeout = self.deps.request_timeout;
        let fut = async move {
            let run = client.save_file_part(msg.file_id, msg.part, msg.total_parts, &msg.bytes);
            tokio::time::timeout(timeout, run)
                .await
                .unwrap_or(Err(TgError::Timeout(timeout)))
        };
        Box::pin(
            actix::fut::wrap_future(fut).map(|res, act: &mut Self, ctx| {
                if let Err(e) = &res {
                    act.note_error(e, ctx);
                }
                res.map_err(CallError::Telegram)
            }),
        )
    }
}

impl Handler<Rotate> for AccountActor {
    type Result = ResponseActFuture<Self, Result<i64, CallError>>;

    fn handle(&mut self, Rotate(reason): Rotate, _: &mut Context<Self>) -> Self::Result {
        Box::pin(self.rotate(reason))
    }
}

impl Handler<AccountWideTgError> for AccountActor {
    type Result = ();

    fn handle(&mut self, AccountWideTgError(err): AccountWideTgError, ctx: &mut Context<Self>) {
        self.note_error(&err, ctx);
    }
}

impl Handler<GetState> for AccountActor {
    type Result = MessageResult<GetState>;

    fn handle(&mut self, _: GetState, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.state)
    }
}
