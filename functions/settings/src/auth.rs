//! Who is calling: the claims the HTTP API's JWT authorizer put in the request context.
//!
//! In AWS the authorizer has already checked the token's signature, issuer and audience; this
//! module enforces the rest of contract section 2: the `company_id` claim must equal the
//! path's company and the `role` claim must be `admin`. It runs before anything reads the body.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription, ApiGatewayV2httpRequestContext,
};
use lambda_http::request::RequestContext;
use reimbi_shared::domain::CompanyId;

use crate::error::ApiError;

/// The claim naming the caller's company.
pub const COMPANY_CLAIM: &str = "company_id";
/// The claim naming the caller's role; only `admin` may use this API.
pub const ROLE_CLAIM: &str = "role";
pub const ADMIN_ROLE: &str = "admin";

/// Builds the request context an HTTP API JWT authorizer would attach, carrying `claims`.
/// The local runner inserts it (as a request extension) after verifying its own tokens;
/// tests insert it to act as a given caller.
pub fn request_context(claims: &[(&str, &str)]) -> RequestContext {
    let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
    jwt.claims = claims.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let mut authorizer = ApiGatewayRequestAuthorizer::default();
    authorizer.jwt = Some(jwt);
    let mut ctx = ApiGatewayV2httpRequestContext::default();
    ctx.authorizer = Some(authorizer);
    ctx.stage = Some("$default".to_owned());
    RequestContext::ApiGatewayV2(ctx)
}

/// The HTTP API request context, when the request came through one (or a runner that mimics it).
pub(crate) fn http_api_context(parts: &Parts) -> Option<&ApiGatewayV2httpRequestContext> {
    // Only the HTTP API variant is compiled in today; other variants carry no JWT claims.
    #[allow(irrefutable_let_patterns, unreachable_patterns)]
    match parts.extensions.get::<RequestContext>()? {
        RequestContext::ApiGatewayV2(ctx) => Some(ctx),
        _ => None,
    }
}

fn claim<'a>(ctx: &'a ApiGatewayV2httpRequestContext, name: &str) -> Option<&'a str> {
    ctx.authorizer.as_ref()?.jwt.as_ref()?.claims.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

/// An admin of the company named in the path: the proof every handler takes first.
#[derive(Debug, Clone)]
pub struct CompanyAdmin {
    pub company: CompanyId,
}

impl CompanyAdmin {
    /// Checks the claims against the path's `companyId`.
    pub fn authorize(ctx: Option<&ApiGatewayV2httpRequestContext>, path_company: &str) -> Result<Self, ApiError> {
        let ctx = ctx.ok_or(ApiError::Unauthorized)?;
        let claimed = claim(ctx, COMPANY_CLAIM).ok_or(ApiError::Unauthorized)?;
        if claimed != path_company {
            return Err(ApiError::Forbidden("this token is not for this company"));
        }
        if claim(ctx, ROLE_CLAIM) != Some(ADMIN_ROLE) {
            return Err(ApiError::Forbidden("only a company admin may use this API"));
        }
        // A claim equal to a malformed path id names no company this service knows.
        let company =
            CompanyId::parse(path_company).map_err(|_| ApiError::Forbidden("this token is not for this company"))?;
        Ok(Self { company })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CompanyAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound("no such route".into()))?;
        let path_company = params
            .iter()
            .find(|(k, _)| *k == "companyId")
            .map(|(_, v)| v.to_owned())
            .ok_or_else(|| ApiError::NotFound("no such route".into()))?;
        let admin = Self::authorize(http_api_context(parts), &path_company)?;
        tracing::Span::current().record("company_id", admin.company.as_str());
        Ok(admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(claims: &[(&str, &str)]) -> ApiGatewayV2httpRequestContext {
        match request_context(claims) {
            #[allow(unreachable_patterns)]
            RequestContext::ApiGatewayV2(c) => c,
            #[allow(unreachable_patterns)]
            _ => unreachable!(),
        }
    }

    #[test]
    fn an_admin_of_the_path_company_is_let_in() {
        let c = ctx(&[("company_id", "acme"), ("role", "admin")]);
        assert_eq!(CompanyAdmin::authorize(Some(&c), "acme").unwrap().company.as_str(), "acme");
    }

    #[test]
    fn missing_context_or_company_claim_is_unauthorized() {
        assert!(matches!(CompanyAdmin::authorize(None, "acme"), Err(ApiError::Unauthorized)));
        let c = ctx(&[("role", "admin")]);
        assert!(matches!(CompanyAdmin::authorize(Some(&c), "acme"), Err(ApiError::Unauthorized)));
    }

    #[test]
    fn another_company_or_a_member_is_forbidden() {
        let other = ctx(&[("company_id", "globex"), ("role", "admin")]);
        assert!(matches!(CompanyAdmin::authorize(Some(&other), "acme"), Err(ApiError::Forbidden(_))));
        let member = ctx(&[("company_id", "acme"), ("role", "member")]);
        assert!(matches!(CompanyAdmin::authorize(Some(&member), "acme"), Err(ApiError::Forbidden(_))));
        let no_role = ctx(&[("company_id", "acme")]);
        assert!(matches!(CompanyAdmin::authorize(Some(&no_role), "acme"), Err(ApiError::Forbidden(_))));
    }
}
