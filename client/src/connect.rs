//! Opening one connection: the upgrade request with the bearer token in its
//! `Authorization` header (never in the URL), under a timeout.

use crate::config::Config;
use crate::error::Error;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// An open connection.
pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why a connection attempt failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The server refused the token (401/403 on the upgrade): do not retry.
    Unauthorized(String),
    /// Anything else (refused, timed out, another HTTP status): retry.
    Other(String),
}

/// The upgrade request: the configured URL plus `Authorization: Bearer`.
/// Refuses a URL that carries a token in its query.
pub(crate) fn upgrade_request(config: &Config) -> Result<Request, Error> {
    let mut request = config
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| Error::Config(format!("bad URL: {e}")))?;
    let token_in_query = request.uri().query().is_some_and(|query| {
        query
            .split('&')
            .any(|pair| pair.starts_with("token=") || pair.starts_with("access_token="))
    });
    if token_in_query {
        return Err(Error::Config(
            "the token belongs in Config::token, not in the URL (the server refuses it there)"
                .into(),
        ));
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {}", config.token.expose()))
        .map_err(|_| Error::Config("the token is not a valid header value".into()))?;
    value.set_sensitive(true);
    request.headers_mut().insert(AUTHORIZATION, value);
    Ok(request)
}

/// Opens a connection, authenticated by the upgrade's header.
pub(crate) async fn connect(config: &Config) -> Result<Socket, Failure> {
    use tokio_tungstenite::tungstenite::Error as WsError;

    let request = upgrade_request(config).map_err(|e| Failure::Other(e.to_string()))?;
    // Frames are small and latency matters more than packet count: no Nagle.
    let attempt = tokio_tungstenite::connect_async_with_config(request, None, true);
    match tokio::time::timeout(config.connect_timeout, attempt).await {
        Ok(Ok((socket, _response))) => Ok(socket),
        Ok(Err(WsError::Http(response))) if matches!(response.status().as_u16(), 401 | 403) => {
            Err(Failure::Unauthorized(format!(
                "the upgrade was refused with HTTP {}",
                response.status()
            )))
        }
        Ok(Err(e)) => Err(Failure::Other(e.to_string())),
        Err(_) => Err(Failure::Other(format!(
            "no connection within {:?}",
            config.connect_timeout
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_goes_in_a_sensitive_authorization_header() {
        let request = upgrade_request(&Config::new("ws://127.0.0.1:1/ws", "t0k")).unwrap();
        let header = &request.headers()[AUTHORIZATION];
        assert_eq!(header, "Bearer t0k");
        assert!(header.is_sensitive());
        assert_eq!(request.uri().query(), None);
    }

    #[test]
    fn a_url_with_a_token_in_its_query_is_refused() {
        let err =
            upgrade_request(&Config::new("ws://127.0.0.1:1/ws?token=t0k", "t0k")).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err:?}");
    }
}
