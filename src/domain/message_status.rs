//! Where an outgoing message is.

/// Where a message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Accepted, waiting for its turn (rate limits, flood waits, retries).
    Queued,
    /// Being sent to Telegram.
    Sending,
    /// Telegram has it.
    Sent,
    /// Given up: a permanent error, or too many transient ones.
    Failed,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Queued, Self::Sending, Self::Sent, Self::Failed]
            .into_iter()
            .find(|st| st.as_str() == s)
    }

    /// Not delivered yet, and still going to be tried.
    pub fn pending(self) -> bool {
        matches!(self, Self::Queued | Self::Sending)
    }
}
