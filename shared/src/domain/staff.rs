//! Reimbi staff: who can approve a candidate's expenses.

use serde::{Deserialize, Serialize};

use super::Timestamp;
use super::ids::{CompanyId, EmailAddress};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StaffMember {
    pub company_id: CompanyId,
    pub email: EmailAddress,
    pub name: String,
    pub can_approve: bool,
    pub updated_at: Timestamp,
}
