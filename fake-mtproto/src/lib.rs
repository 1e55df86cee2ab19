//! A loopback fake MTProto server: tgvisor's simulated Telegram
//! ([`SimWorld`](tgvisor::telegram::sim::SimWorld)) served over real MTProto
//! 2.0 on 127.0.0.1, so tests and benchmarks can run the real grammers 0.11
//! client end to end, unpatched.
//!
//! # How it works
//! - Sessions come from the world ([`FakeServer::authorize`]): grammers is
//!   seeded with the world's auth key and this server's address for every
//!   DC, so it skips the DH/RSA exchange (`connect_with_auth`).
//! - Transport `Full` (the only one grammers uses); MTProto 2.0 envelope
//!   (msg_key/AES-IGE, x = 0 inbound, 8 outbound); the client's session id is
//!   echoed in every message; any server salt is accepted and salt 0 is
//!   announced in `new_session_created`.
//! - Service messages: `msg_container`, `gzip_packed` (both ways: results of
//!   1 KiB and more are sent gzipped), `msgs_ack` (ignored), `ping`,
//!   `ping_delay_disconnect` (pong, and the connection closes if no new one
//!   arrives in time), `get_future_salts`; state/resend requests are ignored.
//! - Requests are unwrapped from `invokeWithLayer`, `initConnection`,
//!   `invokeWithoutUpdates`, `invokeAfterMsg(s)` and `invokeWithTakeout`,
//!   and run concurrently, one task each.
//! - Each auth key gets ONE sim connection, opened on first use and kept for
//!   the server's lifetime (reopened when the sim drops it), so updates
//!   arriving while grammers is disconnected are kept. Each account has a
//!   `pts` log: every new message (incoming or outgoing) takes `pts + 1`.
//!   New messages are pushed live (`updates` + `updateNewMessage`, sender
//!   in `users`) to the account's open connections; `updates.getState` and
//!   `updates.getDifference` (`differenceEmpty`, `difference`, or
//!   `differenceSlice` by 100) let grammers' `catch_up` recover the rest.
//! - Supported methods: `help.getConfig` (no `dc_options`, `this_dc` = the
//!   key's DC), `users.getUsers`, `contacts.resolveUsername`,
//!   `messages.getHistory`, `messages.sendMessage`, `messages.sendMedia`
//!   (uploaded documents and photos), `upload.saveFilePart`,
//!   `upload.saveBigFilePart`, `updates.getState`, `updates.getDifference`,
//!   `ping`. Sends answer `updates` with `updateMessageID` +
//!   `updateNewMessage` (new id and pts) and are pushed to the account's
//!   other connections. Anything else answers 400
//!   [`METHOD_NOT_SUPPORTED`].
//! - Sim errors become `rpc_error`s (`FLOOD_WAIT_X`, `SLOWMODE_WAIT_X`,
//!   `PEER_ID_INVALID`, `AUTH_KEY_UNREGISTERED`, `SESSION_REVOKED`,
//!   `USER_DEACTIVATED_BAN`, …); the sim's injected network failures close
//!   the TCP connection without an answer. An auth key the world never
//!   issued gets the transport error `-404`, as from Telegram; so does an
//!   attempt at the DH exchange.
//! - Fault switches: [`FakeServer::drop_connections`],
//!   [`FakeServer::drop_on_next`], [`FakeServer::panic_client_on_next`].
//!
//! # What it cannot do
//! - No DH/RSA key exchange, so no sign-in through MTProto (`auth.*`): keys
//!   come from the world. No temporary keys, no `auth.bindTempAuthKey`.
//! - One address for every DC: no DC migration (`*_MIGRATE_X`), no
//!   exported/imported authorizations, no CDN, no file downloads.
//! - Only private chats with users (the sim has no groups or channels), so
//!   no channel updates or `getChannelDifference`; no secret chats (`qts`
//!   stays 0); `seq` is always 0 (updates are ordered by `pts` alone).
//! - History ignores `offset_date` and negative `add_offset` (reverse
//!   iteration); access hashes and file references are made up and never
//!   checked; media in history carries no downloadable file.
//! - The update log lives in the server: a new server over the same world
//!   starts at pts 0 (a client with a higher pts gets `differenceTooLong`).
//!   Updates the sim pushes while the fake is reopening a dropped sim
//!   connection can be missed.
//! - No server-side acks or resends; the server never sends containers.

mod convert;
mod crypto;
mod rpc;
mod server;
mod session;
mod transport;
mod world;

pub use rpc::METHOD_NOT_SUPPORTED;
pub use server::FakeServer;
