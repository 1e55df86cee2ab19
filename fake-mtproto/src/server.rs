//! The listener, the per-TCP-connection loop (framing, envelope, service
//! messages) and the [`FakeServer`] handle with its fault switches.

use crate::crypto::{self, Key};
use crate::rpc::{self, Call, Reply};
use crate::session::{ClientMessage, Reader, SERVER_SALT, Session};
use crate::transport::{FullCodec, error_status};
use crate::world::{Account, Feed, lock};
use grammers_tl_types::{self as tl, Cursor, Deserializable, Identifiable, Serializable};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tgvisor::sessions::{AuthKey, DcEntry, SessionData};
use tgvisor::telegram::sim::SimWorld;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;

/// `msg_container#73f1f8dc messages:vector<message>`.
const MSG_CONTAINER: u32 = 0x73f1_f8dc;
/// `gzip_packed#3072cfa1 packed_data:bytes`.
const GZIP_PACKED: u32 = 0x3072_cfa1;
/// Results at least this long are sent gzipped (when that is smaller).
const GZIP_THRESHOLD: usize = 1024;
/// Largest body a client's `gzip_packed` may unpack to.
const MAX_UNPACKED: u64 = 4 * 1024 * 1024;
/// The auth key id of unencrypted messages (the DH key exchange).
const PLAIN_KEY_ID: [u8; 8] = [0; 8];

/// Something for a connection's loop to do.
#[derive(Debug)]
pub(crate) enum Out {
    /// Seal and send one message.
    Send {
        body: Vec<u8>,
        content_related: bool,
        /// An answer to a client message (msg_id ≡ 1 mod 4) or not (≡ 3).
        response: bool,
        /// Send it under another session id (makes grammers panic).
        wrong_session: bool,
    },
    /// Close the connection without answering.
    Close,
}

impl Out {
    /// A server-initiated, content-related message (updates, notices).
    pub(crate) fn update(body: Vec<u8>) -> Self {
        Self::Send {
            body,
            content_related: true,
            response: false,
            wrong_session: false,
        }
    }

    fn answer(body: Vec<u8>, content_related: bool) -> Self {
        Self::Send {
            body,
            content_related,
            response: true,
            wrong_session: false,
        }
    }
}

#[derive(Clone)]
struct KnownKey {
    key: [u8; 256],
    user_id: i64,
    dc: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    Drop { applied: bool },
    Panic,
}

struct ConnHandle {
    tx: mpsc::UnboundedSender<Out>,
    abort: Option<AbortHandle>,
}

struct Shared {
    world: SimWorld,
    addr: SocketAddr,
    keys: Mutex<HashMap<[u8; 8], KnownKey>>,
    accounts: Mutex<HashMap<[u8; 8], Arc<Account>>>,
    conns: Mutex<HashMap<u64, ConnHandle>>,
    /// How many entries `conns` has, for waiters.
    open: watch::Sender<usize>,
    next_conn: AtomicU64,
    accepted: watch::Sender<u64>,
    faults: Mutex<Vec<(String, Fault)>>,
    requests: Mutex<BTreeMap<String, u64>>,
}

impl Shared {
    fn count(&self, name: &str) {
        *lock(&self.requests).entry(name.to_owned()).or_default() += 1;
    }

    fn take_fault(&self, name: &str) -> Option<Fault> {
        let mut faults = lock(&self.faults);
        let i = faults.iter().position(|(m, _)| m == name)?;
        Some(faults.remove(i).1)
    }

    /// The world's key with this id, if it issued one.
    fn lookup_key(&self, id: [u8; 8]) -> Option<KnownKey> {
        if let Some(known) = lock(&self.keys).get(&id) {
            return Some(known.clone());
        }
        let issued = self.world.issued_keys();
        let mut keys = lock(&self.keys);
        for (key, user_id, dc) in issued {
            let key = *key.expose();
            keys.entry(crypto::key_id(&key))
                .or_insert(KnownKey { key, user_id, dc });
        }
        keys.get(&id).cloned()
    }

    fn account(&self, id: [u8; 8], known: &KnownKey) -> Arc<Account> {
        lock(&self.accounts)
            .entry(id)
            .or_insert_with(|| {
                let mut session = SessionData::single_dc(DcEntry {
                    id: known.dc,
                    ipv4: None,
                    ipv6: None,
                    auth_key: Some(AuthKey::new(known.key)),
                });
                session.user_id = Some(known.user_id);
                rewrite_session(self.addr, &mut session);
                Arc::new(Account::new(
                    self.world.clone(),
                    session,
                    known.user_id,
                    known.dc,
                ))
            })
            .clone()
    }

    fn drop_connections(&self) {
        let handles: Vec<(Option<AbortHandle>, mpsc::UnboundedSender<Out>)> = lock(&self.conns)
            .values()
            .map(|h| (h.abort.clone(), h.tx.clone()))
            .collect();
        for (abort, tx) in handles {
            match abort {
                Some(abort) => abort.abort(),
                None => {
                    let _ = tx.send(Out::Close);
                }
            }
        }
    }
}

fn rewrite_session(addr: SocketAddr, session: &mut SessionData) {
    for dc in &mut session.dcs {
        match addr {
            SocketAddr::V4(a) => {
                dc.ipv4 = Some(a);
                dc.ipv6 = None;
            }
            SocketAddr::V6(a) => {
                dc.ipv4 = None;
                dc.ipv6 = Some(a);
            }
        }
    }
}

/// A loopback fake Telegram serving a [`SimWorld`] over real MTProto.
///
/// Dropping it stops the listener and closes its connections; [`FakeServer::shutdown`]
/// also closes its sim connections (so the world's keys are free again).
pub struct FakeServer {
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl std::fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeServer")
            .field("addr", &self.shared.addr)
            .finish_non_exhaustive()
    }
}

impl FakeServer {
    /// Listens on 127.0.0.1:0 and serves `world`.
    pub async fn start(world: SimWorld) -> std::io::Result<FakeServer> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            world,
            addr,
            keys: Mutex::new(HashMap::new()),
            accounts: Mutex::new(HashMap::new()),
            conns: Mutex::new(HashMap::new()),
            open: watch::Sender::new(0),
            next_conn: AtomicU64::new(1),
            accepted: watch::Sender::new(0),
            faults: Mutex::new(Vec::new()),
            requests: Mutex::new(BTreeMap::new()),
        });
        let accept = tokio::spawn(accept_loop(shared.clone(), listener));
        tracing::debug!(%addr, "fake MTProto server listening");
        Ok(FakeServer { shared, accept })
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// [`FakeServer::addr`] as the IPv4 address grammers' `DcOption` wants.
    pub fn addr_v4(&self) -> SocketAddrV4 {
        match self.shared.addr {
            SocketAddr::V4(a) => a,
            // unwrap-free: the listener binds 127.0.0.1, so this arm is dead.
            SocketAddr::V6(a) => SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, a.port()),
        }
    }

    /// [`FakeServer::addr`] as an IPv4-mapped IPv6 address (grammers'
    /// `DcOption` needs one; it is dialled only with `use_ipv6`).
    pub fn addr_v6(&self) -> SocketAddrV6 {
        let v4 = self.addr_v4();
        SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0)
    }

    pub fn world(&self) -> &SimWorld {
        &self.shared.world
    }

    /// A session for `e164` as if signed in elsewhere ([`SimWorld::authorize`]),
    /// with every DC's address pointing at this server. `None` when the
    /// number is not a sim number.
    pub fn authorize(&self, e164: &str) -> Option<SessionData> {
        let mut session = self.shared.world.authorize(e164)?;
        self.rewrite(&mut session);
        Some(session)
    }

    /// Points every DC of `session` at this server (keeps keys).
    pub fn rewrite(&self, session: &mut SessionData) {
        rewrite_session(self.shared.addr, session);
    }

    /// Closes every open TCP connection now.
    pub fn drop_connections(&self) {
        self.shared.drop_connections();
    }

    /// The next request for this TL method name (e.g. `"messages.sendMessage"`)
    /// closes its TCP connection without an answer. With `applied` the
    /// request is applied to the world first (the answer is lost after the
    /// send); without, it is not.
    pub fn drop_on_next(&self, method: &str, applied: bool) {
        lock(&self.shared.faults).push((method.to_owned(), Fault::Drop { applied }));
    }

    /// The next request for this method is applied, and its answer is sent
    /// under a wrong session id. grammers 0.11 `panic!("wrong session id")`s
    /// in `mtp::Encrypted::deserialize`, inside the connection task its
    /// `SenderPoolRunner` spawned on a `JoinSet`; `SenderPoolRunner::run`
    /// re-raises that panic with `panic::resume_unwind`, so the task running
    /// the runner ends with a panic. Pending calls fail with
    /// `InvocationError::Dropped`.
    pub fn panic_client_on_next(&self, method: &str) {
        lock(&self.shared.faults).push((method.to_owned(), Fault::Panic));
    }

    /// Open TCP connections.
    pub fn connections(&self) -> usize {
        lock(&self.shared.conns).len()
    }

    /// Waits until exactly `n` TCP connections are open (e.g. 0 after a
    /// client quit, once the server has seen the connection close).
    pub async fn wait_connections(&self, n: usize) {
        let mut rx = self.shared.open.subscribe();
        let _ = rx.wait_for(|open| *open == n).await;
    }

    /// TL method names received (unwrapped from `invokeWithLayer`/
    /// `initConnection`), with counts. Unencrypted requests (a client trying
    /// the DH key exchange) are counted too, e.g. `req_pq_multi`.
    pub fn requests(&self) -> BTreeMap<String, u64> {
        lock(&self.shared.requests).clone()
    }

    /// TCP connections accepted so far.
    pub fn accepted(&self) -> u64 {
        *self.shared.accepted.borrow()
    }

    /// Waits until at least `n` TCP connections have been accepted in total.
    pub async fn wait_accepted(&self, n: u64) {
        let mut rx = self.shared.accepted.subscribe();
        // The sender lives in `shared`, which `self` holds: this cannot fail.
        let _ = rx.wait_for(|accepted| *accepted >= n).await;
    }

    /// Stops listening, closes every connection and every sim connection.
    pub async fn shutdown(self) {
        self.accept.abort();
        self.shared.drop_connections();
        let accounts: Vec<Arc<Account>> = lock(&self.shared.accounts).values().cloned().collect();
        for account in accounts {
            account.close().await;
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.accept.abort();
        self.shared.drop_connections();
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "fake MTProto server: accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let id = shared.next_conn.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = mpsc::unbounded_channel();
        {
            let mut conns = lock(&shared.conns);
            conns.insert(
                id,
                ConnHandle {
                    tx: tx.clone(),
                    abort: None,
                },
            );
            shared.open.send_replace(conns.len());
        }
        let task = tokio::spawn(serve(shared.clone(), stream, id, tx, rx));
        if let Some(handle) = lock(&shared.conns).get_mut(&id) {
            handle.abort = Some(task.abort_handle());
        }
        shared.accepted.send_modify(|n| *n += 1);
    }
}

/// Unregisters a connection however its task ends (even aborted).
struct ConnGuard {
    shared: Arc<Shared>,
    id: u64,
    feed: Option<Arc<Feed>>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        {
            let mut conns = lock(&self.shared.conns);
            conns.remove(&self.id);
            self.shared.open.send_replace(conns.len());
        }
        if let Some(feed) = &self.feed {
            feed.unregister(self.id);
        }
    }
}

enum Flow {
    Continue,
    Close,
    /// Answer with a transport error code (`-404`), then close.
    Refuse(i32),
}

struct Conn {
    shared: Arc<Shared>,
    id: u64,
    tx: mpsc::UnboundedSender<Out>,
    session: Option<(Session, Arc<Account>)>,
    key_id: [u8; 8],
    disconnect_at: Option<Instant>,
}

async fn serve(
    shared: Arc<Shared>,
    stream: TcpStream,
    id: u64,
    tx: mpsc::UnboundedSender<Out>,
    mut rx: mpsc::UnboundedReceiver<Out>,
) {
    let mut guard = ConnGuard {
        shared: shared.clone(),
        id,
        feed: None,
    };
    let (mut rd, mut wr) = stream.into_split();
    let mut codec = FullCodec::new();
    let mut conn = Conn {
        shared,
        id,
        tx,
        session: None,
        key_id: PLAIN_KEY_ID,
        disconnect_at: None,
    };
    let mut buf = vec![0u8; 64 * 1024];
    'conn: loop {
        let disconnect_at = conn.disconnect_at;
        tokio::select! {
            read = rd.read(&mut buf) => {
                let n = match read {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) => {
                        tracing::debug!(conn = id, error = %e, "read failed");
                        break;
                    }
                };
                codec.feed(&buf[..n]);
                loop {
                    let frame = match codec.next_frame() {
                        Ok(Some(frame)) => frame,
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!(conn = id, error = %e, "bad frame from the client; closing");
                            break 'conn;
                        }
                    };
                    match conn.on_frame(&frame) {
                        Flow::Continue => {}
                        Flow::Close => break 'conn,
                        Flow::Refuse(code) => {
                            let _ = wr.write_all(&error_status(code)).await;
                            break 'conn;
                        }
                    }
                    if guard.feed.is_none() {
                        guard.feed = conn.session.as_ref().map(|(_, a)| a.feed.clone());
                    }
                }
            }
            out = rx.recv() => {
                let Some(Out::Send { body, content_related, response, wrong_session }) = out else {
                    break; // Out::Close
                };
                let Some((session, _)) = conn.session.as_mut() else { continue };
                let packet = session.seal(&body, content_related, response, wrong_session);
                if let Err(e) = wr.write_all(&codec.pack(&packet)).await {
                    tracing::debug!(conn = id, error = %e, "write failed");
                    break;
                }
            }
            _ = tokio::time::sleep_until(disconnect_at.unwrap_or_else(Instant::now)), if disconnect_at.is_some() => {
                tracing::debug!(conn = id, "ping_delay_disconnect expired; closing");
                break;
            }
        }
    }
    let _ = wr.shutdown().await;
}

impl Conn {
    fn send(&self, out: Out) {
        let _ = self.tx.send(out);
    }

    fn on_frame(&mut self, frame: &[u8]) -> Flow {
        let Some(key_id) = frame.get(..8) else {
            return Flow::Close;
        };
        let mut id = [0u8; 8];
        id.copy_from_slice(key_id);
        if self.session.is_none() {
            if id == PLAIN_KEY_ID {
                // The client wants to create a key (DH): the fake cannot.
                let mut r = Reader::new(&frame[8..]);
                if let (Ok(_msg_id), Ok(_len), Ok(method)) = (r.i64(), r.i32(), r.u32()) {
                    self.shared.count(&rpc::method_name(method));
                }
                return Flow::Refuse(404);
            }
            let Some(known) = self.shared.lookup_key(id) else {
                tracing::debug!(conn = self.id, "unknown auth key; answering -404");
                return Flow::Refuse(404);
            };
            let account = self.shared.account(id, &known);
            account.feed.register(self.id, self.tx.clone());
            self.session = Some((Session::new(Key::new(known.key)), account));
            self.key_id = id;
        } else if id != self.key_id {
            tracing::warn!(conn = self.id, "auth key changed mid-connection; closing");
            return Flow::Close;
        }
        let Some((session, _)) = self.session.as_mut() else {
            return Flow::Close;
        };
        let (message, new_session) = match session.open(frame) {
            Ok(opened) => opened,
            Err(e) => {
                tracing::warn!(conn = self.id, error = %e, "undecryptable packet; closing");
                return Flow::Close;
            }
        };
        if new_session {
            let mut unique_id = [0u8; 8];
            let _ = getrandom::fill(&mut unique_id);
            let notice = tl::enums::NewSession::Created(tl::types::NewSessionCreated {
                first_msg_id: message.msg_id,
                unique_id: i64::from_le_bytes(unique_id),
                server_salt: SERVER_SALT,
            });
            self.send(Out::update(notice.to_bytes()));
        }
        self.on_message(message, true)
    }

    fn on_message(&mut self, message: ClientMessage, top_level: bool) -> Flow {
        let mut r = Reader::new(&message.body);
        let Ok(constructor) = r.u32() else {
            return Flow::Close;
        };
        tracing::trace!(
            conn = self.id,
            msg_id = message.msg_id,
            seq_no = message.seq_no,
            constructor = %rpc::method_name(constructor),
            "client message",
        );
        match constructor {
            MSG_CONTAINER if top_level => match parse_container(&message.body[4..]) {
                Some(inner) => {
                    for m in inner {
                        if let Flow::Close = self.on_message(m, false) {
                            return Flow::Close;
                        }
                    }
                    Flow::Continue
                }
                None => Flow::Close,
            },
            GZIP_PACKED => match gunzip(&message.body[4..]) {
                Some(body) => self.on_message(ClientMessage { body, ..message }, top_level),
                None => Flow::Close,
            },
            tl::types::MsgsAck::CONSTRUCTOR_ID
            | tl::types::MsgsStateReq::CONSTRUCTOR_ID
            | tl::types::MsgResendReq::CONSTRUCTOR_ID
            | tl::types::MsgResendAnsReq::CONSTRUCTOR_ID
            | tl::types::HttpWait::CONSTRUCTOR_ID => Flow::Continue,
            tl::functions::PingDelayDisconnect::CONSTRUCTOR_ID => {
                self.shared.count(&rpc::method_name(constructor));
                let Ok(ping) = tl::functions::PingDelayDisconnect::from_bytes(&message.body[4..])
                else {
                    return Flow::Close;
                };
                let delay = u64::try_from(ping.disconnect_delay).unwrap_or(0);
                self.disconnect_at = Some(Instant::now() + Duration::from_secs(delay));
                self.send(Out::answer(rpc::pong(message.msg_id, ping.ping_id), false));
                Flow::Continue
            }
            tl::functions::GetFutureSalts::CONSTRUCTOR_ID => {
                self.shared.count(&rpc::method_name(constructor));
                let Ok(req) = tl::functions::GetFutureSalts::from_bytes(&message.body[4..]) else {
                    return Flow::Close;
                };
                self.send(Out::answer(future_salts(message.msg_id, req.num), false));
                Flow::Continue
            }
            _ => {
                self.on_request(message);
                Flow::Continue
            }
        }
    }

    /// An API request: counted, checked against the fault switches, then
    /// answered by its own task (requests run concurrently, as on Telegram).
    fn on_request(&mut self, message: ClientMessage) {
        let Some((_, account)) = self.session.as_ref() else {
            return;
        };
        let method = match rpc::unwrap_query(&message.body) {
            Ok((method, _)) => method,
            Err(_) => {
                let error = rpc::rpc_error(400, "INPUT_REQUEST_INVALID");
                self.send(Out::answer(rpc::rpc_result(message.msg_id, &error), true));
                return;
            }
        };
        let name = rpc::method_name(method);
        self.shared.count(&name);
        let fault = self.shared.take_fault(&name);
        if fault == Some(Fault::Drop { applied: false }) {
            tracing::debug!(conn = self.id, method = %name, "dropping the connection before the request");
            self.send(Out::Close);
            return;
        }
        let account = account.clone();
        let tx = self.tx.clone();
        let conn_id = self.id;
        tokio::spawn(async move {
            let msg_id = message.msg_id;
            let reply = match rpc::unwrap_query(&message.body) {
                Ok((method, body)) => {
                    let call = Call {
                        account: &account,
                        conn_id,
                        msg_id,
                    };
                    rpc::dispatch(&call, method, body).await
                }
                Err(_) => Reply::Drop,
            };
            let out = match fault {
                Some(Fault::Drop { .. }) => Out::Close,
                _ => reply_out(msg_id, reply, fault == Some(Fault::Panic)),
            };
            let _ = tx.send(out);
        });
    }
}

fn reply_out(msg_id: i64, reply: Reply, wrong_session: bool) -> Out {
    let (body, content_related) = match reply {
        Reply::Result(result) => (rpc::rpc_result(msg_id, &maybe_gzip(result)), true),
        Reply::Error { code, message } => (
            rpc::rpc_result(msg_id, &rpc::rpc_error(code, &message)),
            true,
        ),
        Reply::Bare(body) => (body, false),
        Reply::Drop => return Out::Close,
    };
    Out::Send {
        body,
        content_related,
        response: true,
        wrong_session,
    }
}

/// `future_salts` for `get_future_salts`: all [`SERVER_SALT`].
fn future_salts(req_msg_id: i64, num: i32) -> Vec<u8> {
    let now = crate::convert::now();
    let salts = (0..num.clamp(1, 64))
        .map(|i| tl::types::FutureSalt {
            valid_since: now + (i - 1) * 3600,
            valid_until: now + i * 3600,
            salt: SERVER_SALT,
        })
        .collect();
    tl::enums::FutureSalts::Salts(tl::types::FutureSalts {
        req_msg_id,
        now,
        salts: tl::RawVec(salts),
    })
    .to_bytes()
}

fn parse_container(body: &[u8]) -> Option<Vec<ClientMessage>> {
    let mut r = Reader::new(body);
    let count = r.len().ok()?;
    let mut out = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let msg_id = r.i64().ok()?;
        let seq_no = r.i32().ok()?;
        let len = r.len().ok()?;
        let body = r.bytes(len).ok()?.to_vec();
        out.push(ClientMessage {
            msg_id,
            seq_no,
            body,
        });
    }
    Some(out)
}

fn gunzip(packed: &[u8]) -> Option<Vec<u8>> {
    let data = Vec::<u8>::deserialize(&mut Cursor::from_slice(packed)).ok()?;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data.as_slice())
        .take(MAX_UNPACKED)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

/// Large results go out as `gzip_packed`, as Telegram does.
fn maybe_gzip(result: Vec<u8>) -> Vec<u8> {
    if result.len() < GZIP_THRESHOLD {
        return result;
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    if encoder.write_all(&result).is_err() {
        return result;
    }
    let Ok(packed) = encoder.finish() else {
        return result;
    };
    let mut body = GZIP_PACKED.to_le_bytes().to_vec();
    packed.serialize(&mut body);
    if body.len() < result.len() {
        body
    } else {
        result
    }
}
