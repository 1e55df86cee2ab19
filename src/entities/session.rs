//! `sessions`: Telegram session blobs, AES-256-GCM encrypted. The row id and
//! the account id are the associated data, so a blob copied into another row
//! does not decrypt. At most one row per account has `is_active` (a partial
//! unique index).

use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: i64,
    /// Which keyring key sealed `ciphertext`.
    pub key_id: String,
    /// 96-bit random nonce, fresh for every write.
    pub nonce: Vec<u8>,
    /// Ciphertext followed by the 16-byte GCM tag.
    pub ciphertext: Vec<u8>,
    pub is_active: bool,
    pub error_count: i32,
    pub created_at: DateTimeWithTimeZone,
    pub last_used_at: Option<DateTimeWithTimeZone>,
    pub deactivated_at: Option<DateTimeWithTimeZone>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Ciphertext is not secret, but it is noise in logs: print its size.
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("key_id", &self.key_id)
            .field("ciphertext_len", &self.ciphertext.len())
            .field("is_active", &self.is_active)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::account::Entity",
        from = "Column::AccountId",
        to = "super::account::Column::Id",
        on_delete = "Cascade"
    )]
    Account,
}

impl Related<super::account::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Account.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
