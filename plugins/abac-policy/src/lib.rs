//! `abac-policy` (policy-engine): attribute-based access control rules
//! from the tenant's configuration.
//!
//! ```json
//! { "rules": [
//!   { "id": "owners-edit", "effect": "allow", "actions": ["documents:*"],
//!     "resource_kinds": ["document"],
//!     "conditions": [ { "attribute": "resource.owner", "op": "equals", "ref": "subject.id" } ] },
//!   { "id": "no-delete-without-mfa", "effect": "deny", "actions": ["*:delete"],
//!     "conditions": [ { "attribute": "context.mfa", "op": "not_equals", "value": true } ] },
//!   { "id": "senior-read", "effect": "allow", "actions": ["read"],
//!     "conditions": [ { "attribute": "subject.roles", "op": "contains", "value": "auditor" },
//!                     { "attribute": "subject.level", "op": "gte", "value": 3 } ] }
//! ] }
//! ```
//!
//! A rule matches a request when the action matches one of its `actions`
//! globs (`*` any run of characters, `?` one character), the resource kind
//! matches one of its `resource_kinds` globs (if any), the subject kind is
//! in `subject_kinds` (if any), and every condition holds. Any matching
//! `deny` rule denies (deny overrides allow); otherwise any matching
//! `allow` rule allows; otherwise the answer is `not-applicable`. The
//! reasons name the matching rules of the winning effect (at most 16).
//!
//! Attribute paths: `action`, `subject.id`, `subject.kind` (`user` or
//! `client`), `subject.<attr>`, `resource.id`, `resource.kind`,
//! `resource.<attr>`, `context.<attr>`. Values are compared as JSON
//! (numbers numerically). Operators:
//!
//! - `equals` / `not_equals`: JSON equality (a missing attribute is not
//!   equal to anything, so `not_equals` holds for it);
//! - `in` / `not_in`: the attribute (or, for a list attribute, any of its
//!   elements) is one of the array `value`;
//! - `contains`: a list attribute has the element, or a text attribute has
//!   the substring;
//! - `exists` / `absent`: the attribute is present / missing;
//! - `gt`, `gte`, `lt`, `lte`: numeric comparisons (false unless both sides
//!   are numbers).
//!
//! Every condition compares with either a literal `value` or another
//! attribute `ref`. The configuration is validated and compiled once per
//! instance.

use serde::Deserialize;
use serde_json::Value;
use vaultaris_plugin_sdk::policy::{
    Decision, DecisionRequest, Effect, PolicyEngine, Reason, SubjectKind,
};
use vaultaris_plugin_sdk::{
    Attribute, CallContext, Plugin, PluginError, export_plugin, parse_config,
};

const MAX_REASONS: usize = 16;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    rules: Vec<RuleConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleConfig {
    id: String,
    #[serde(default)]
    description: Option<String>,
    effect: RuleEffect,
    actions: Vec<String>,
    #[serde(default)]
    resource_kinds: Vec<String>,
    #[serde(default)]
    subject_kinds: Vec<SubjectKindConfig>,
    #[serde(default)]
    conditions: Vec<ConditionConfig>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RuleEffect {
    Allow,
    Deny,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SubjectKindConfig {
    User,
    Client,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConditionConfig {
    attribute: String,
    op: Op,
    #[serde(default)]
    value: Option<Value>,
    #[serde(default, rename = "ref")]
    reference: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Op {
    Equals,
    NotEquals,
    In,
    NotIn,
    Contains,
    Exists,
    Absent,
    Gt,
    Gte,
    Lt,
    Lte,
}

/// Where an attribute is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Path {
    Action,
    SubjectId,
    SubjectKind,
    Subject(String),
    ResourceId,
    ResourceKind,
    Resource(String),
    Context(String),
}

impl Path {
    fn parse(text: &str) -> Result<Path, String> {
        let path = match text.split_once('.') {
            None if text == "action" => Path::Action,
            Some(("subject", "id")) => Path::SubjectId,
            Some(("subject", "kind")) => Path::SubjectKind,
            Some(("resource", "id")) => Path::ResourceId,
            Some(("resource", "kind")) => Path::ResourceKind,
            Some(("subject", name)) if !name.is_empty() => Path::Subject(name.to_owned()),
            Some(("resource", name)) if !name.is_empty() => Path::Resource(name.to_owned()),
            Some(("context", name)) if !name.is_empty() => Path::Context(name.to_owned()),
            _ => return Err(format!("unknown attribute path `{text}`")),
        };
        Ok(path)
    }

    fn resolve(&self, request: &DecisionRequest) -> Option<Value> {
        fn attr(list: &[Attribute], name: &str) -> Option<Value> {
            list.iter()
                .rev()
                .find(|a| a.name == name)
                .map(|a| a.value.to_json_value())
        }
        match self {
            Path::Action => Some(Value::from(request.action.as_str())),
            Path::SubjectId => Some(Value::from(request.subject.id.as_str())),
            Path::SubjectKind => Some(Value::from(match request.subject.kind {
                SubjectKind::User => "user",
                SubjectKind::Client => "client",
            })),
            Path::Subject(n) => attr(&request.subject.attributes, n),
            Path::ResourceId => request.target.id.as_deref().map(Value::from),
            Path::ResourceKind => Some(Value::from(request.target.kind.as_str())),
            Path::Resource(n) => attr(&request.target.attributes, n),
            Path::Context(n) => attr(&request.context, n),
        }
    }
}

/// The right-hand side of a condition.
enum Operand {
    None,
    Literal(Value),
    Ref(Path),
}

struct Condition {
    attribute: Path,
    op: Op,
    operand: Operand,
}

struct Rule {
    id: String,
    message: String,
    effect: RuleEffect,
    actions: Vec<String>,
    resource_kinds: Vec<String>,
    subject_kinds: Vec<SubjectKind>,
    conditions: Vec<Condition>,
}

/// The plugin: compiled rules.
pub struct AbacPolicy {
    rules: Vec<Rule>,
}

/// Glob match: `*` matches any run of characters (also empty), `?` exactly
/// one; everything else literally.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn as_number(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// JSON equality with numbers compared numerically (`3` equals `3.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        _ => a == b,
    }
}

fn is_in(attribute: &Value, list: &Value) -> bool {
    let Some(list) = list.as_array() else {
        return false;
    };
    match attribute {
        Value::Array(items) => items.iter().any(|i| list.iter().any(|l| json_eq(i, l))),
        scalar => list.iter().any(|l| json_eq(scalar, l)),
    }
}

fn contains(attribute: &Value, needle: &Value) -> bool {
    match (attribute, needle) {
        (Value::Array(items), n) => items.iter().any(|i| json_eq(i, n)),
        (Value::String(s), Value::String(n)) => s.contains(n.as_str()),
        _ => false,
    }
}

impl Condition {
    fn compile(c: ConditionConfig) -> Result<Condition, String> {
        let attribute = Path::parse(&c.attribute)?;
        let operand = match (c.value, c.reference) {
            (Some(_), Some(_)) => return Err("a condition has both `value` and `ref`".into()),
            (Some(v), None) => Operand::Literal(v),
            (None, Some(r)) => Operand::Ref(Path::parse(&r)?),
            (None, None) => Operand::None,
        };
        match (c.op, &operand) {
            (Op::Exists | Op::Absent, Operand::None) => {}
            (Op::Exists | Op::Absent, _) => return Err(format!("`{:?}` takes no value", c.op)),
            (_, Operand::None) => return Err(format!("`{:?}` needs a `value` or a `ref`", c.op)),
            (Op::In | Op::NotIn, Operand::Literal(v)) if !v.is_array() => {
                return Err("`in` / `not_in` need an array value".into());
            }
            (Op::Gt | Op::Gte | Op::Lt | Op::Lte, Operand::Literal(v)) if !v.is_number() => {
                return Err("numeric comparisons need a number value".into());
            }
            _ => {}
        }
        Ok(Condition {
            attribute,
            op: c.op,
            operand,
        })
    }

    fn holds(&self, request: &DecisionRequest) -> bool {
        let left = self.attribute.resolve(request);
        let right = match &self.operand {
            Operand::None => None,
            Operand::Literal(v) => Some(v.clone()),
            Operand::Ref(p) => p.resolve(request),
        };
        match self.op {
            Op::Exists => left.is_some(),
            Op::Absent => left.is_none(),
            Op::NotEquals => !matches!((&left, &right), (Some(l), Some(r)) if json_eq(l, r)),
            Op::NotIn => !matches!((&left, &right), (Some(l), Some(r)) if is_in(l, r)),
            op => {
                let (Some(l), Some(r)) = (left, right) else {
                    return false;
                };
                match op {
                    Op::Equals => json_eq(&l, &r),
                    Op::In => is_in(&l, &r),
                    Op::Contains => contains(&l, &r),
                    Op::Gt | Op::Gte | Op::Lt | Op::Lte => match (as_number(&l), as_number(&r)) {
                        (Some(a), Some(b)) => match op {
                            Op::Gt => a > b,
                            Op::Gte => a >= b,
                            Op::Lt => a < b,
                            _ => a <= b,
                        },
                        _ => false,
                    },
                    _ => unreachable!("handled above"),
                }
            }
        }
    }
}

impl Rule {
    fn compile(r: RuleConfig) -> Result<Rule, String> {
        if r.id.trim().is_empty() {
            return Err("a rule has an empty id".into());
        }
        if r.actions.is_empty() {
            return Err(format!("rule `{}` has no actions", r.id));
        }
        let conditions = r
            .conditions
            .into_iter()
            .map(Condition::compile)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("rule `{}`: {e}", r.id))?;
        let effect_word = match r.effect {
            RuleEffect::Allow => "allows",
            RuleEffect::Deny => "denies",
        };
        Ok(Rule {
            message: r
                .description
                .unwrap_or_else(|| format!("rule `{}` {effect_word}", r.id)),
            id: r.id,
            effect: r.effect,
            actions: r.actions,
            resource_kinds: r.resource_kinds,
            subject_kinds: r
                .subject_kinds
                .into_iter()
                .map(|k| match k {
                    SubjectKindConfig::User => SubjectKind::User,
                    SubjectKindConfig::Client => SubjectKind::Client,
                })
                .collect(),
            conditions,
        })
    }

    fn matches(&self, request: &DecisionRequest) -> bool {
        self.actions.iter().any(|a| glob_match(a, &request.action))
            && (self.resource_kinds.is_empty()
                || self
                    .resource_kinds
                    .iter()
                    .any(|k| glob_match(k, &request.target.kind)))
            && (self.subject_kinds.is_empty() || self.subject_kinds.contains(&request.subject.kind))
            && self.conditions.iter().all(|c| c.holds(request))
    }
}

impl Plugin for AbacPolicy {
    fn new(config: serde_json::Value) -> Result<Self, PluginError> {
        let config: Config = parse_config(config)?;
        let mut rules = Vec::with_capacity(config.rules.len());
        let mut seen = std::collections::HashSet::new();
        for r in config.rules {
            if !seen.insert(r.id.clone()) {
                return Err(PluginError::misconfigured(
                    "duplicate_rule_id",
                    format!("rule id `{}` is used twice", r.id),
                ));
            }
            rules
                .push(Rule::compile(r).map_err(|e| PluginError::misconfigured("invalid_rule", e))?);
        }
        Ok(AbacPolicy { rules })
    }
}

impl AbacPolicy {
    /// Evaluates one request against every rule.
    pub fn decide(&self, request: &DecisionRequest) -> Decision {
        let mut allow = Vec::new();
        let mut deny = Vec::new();
        for rule in self.rules.iter().filter(|r| r.matches(request)) {
            match rule.effect {
                RuleEffect::Allow => allow.push(rule),
                RuleEffect::Deny => deny.push(rule),
            }
        }
        let (effect, winners) = if !deny.is_empty() {
            (Effect::Deny, deny)
        } else if !allow.is_empty() {
            (Effect::Allow, allow)
        } else {
            return Decision::not_applicable();
        };
        Decision {
            effect,
            reasons: winners
                .into_iter()
                .take(MAX_REASONS)
                .map(|r| Reason {
                    code: r.id.clone(),
                    message: r.message.clone(),
                })
                .collect(),
        }
    }
}

impl PolicyEngine for AbacPolicy {
    fn evaluate(
        &self,
        _ctx: &CallContext,
        request: DecisionRequest,
    ) -> Result<Decision, PluginError> {
        Ok(self.decide(&request))
    }

    fn evaluate_batch(
        &self,
        _ctx: &CallContext,
        requests: Vec<DecisionRequest>,
    ) -> Result<Vec<Decision>, PluginError> {
        Ok(requests.iter().map(|r| self.decide(r)).collect())
    }
}

export_plugin!(AbacPolicy: policy_engine);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use vaultaris_plugin_sdk::policy::{ResourceRef, Subject};

    fn request(
        action: &str,
        kind: &str,
        subject: Vec<Attribute>,
        resource: Vec<Attribute>,
        context: Vec<Attribute>,
    ) -> DecisionRequest {
        DecisionRequest {
            subject: Subject {
                kind: SubjectKind::User,
                id: "alice".into(),
                attributes: subject,
            },
            action: action.into(),
            target: ResourceRef {
                kind: kind.into(),
                id: Some("doc-1".into()),
                attributes: resource,
            },
            context,
        }
    }

    fn policy() -> AbacPolicy {
        AbacPolicy::new(json!({"rules": [
            {"id": "owners-edit", "effect": "allow", "actions": ["documents:*"], "resource_kinds": ["document"],
             "conditions": [{"attribute": "resource.owner", "op": "equals", "ref": "subject.id"}]},
            {"id": "no-delete-without-mfa", "effect": "deny", "actions": ["*:delete"],
             "conditions": [{"attribute": "context.mfa", "op": "not_equals", "value": true}]},
            {"id": "senior-auditors-read", "effect": "allow", "actions": ["documents:read"],
             "description": "Auditors of level 3 and above may read every document",
             "conditions": [{"attribute": "subject.roles", "op": "contains", "value": "auditor"},
                            {"attribute": "subject.level", "op": "gte", "value": 3}]},
            {"id": "embargo", "effect": "deny", "actions": ["documents:read"], "subject_kinds": ["client"],
             "conditions": [{"attribute": "resource.classification", "op": "in", "value": ["secret", "top-secret"]}]},
            {"id": "office-hours-ip", "effect": "allow", "actions": ["reports:?ead"],
             "conditions": [{"attribute": "context.ip_address", "op": "exists"},
                            {"attribute": "subject.groups", "op": "in", "value": ["finance", "ops"]},
                            {"attribute": "subject.banned", "op": "absent"}]}
        ]}))
        .unwrap()
    }

    fn codes(d: &Decision) -> Vec<&str> {
        d.reasons.iter().map(|r| r.code.as_str()).collect()
    }

    #[test]
    fn manifest_matches_exports() {
        vaultaris_plugin_sdk::testing::check_manifest::<AbacPolicy>(include_str!(
            "../manifest.json"
        ))
        .unwrap();
    }

    #[test]
    fn globs() {
        assert!(glob_match("documents:*", "documents:read"));
        assert!(glob_match("*:delete", "users:delete"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("r?ad", "read"));
        assert!(!glob_match("read", "reads"));
        assert!(glob_match("vaultaris:*:delete", "vaultaris:users:delete"));
    }

    #[test]
    fn owner_allowed_and_deny_overrides() {
        let p = policy();
        let owner = vec![Attribute::text("owner", "alice")];
        let d = p.decide(&request(
            "documents:edit",
            "document",
            vec![],
            owner.clone(),
            vec![],
        ));
        assert_eq!((d.effect, codes(&d)), (Effect::Allow, vec!["owners-edit"]));
        // delete without MFA: allowed by ownership, denied by the MFA rule
        let d = p.decide(&request(
            "documents:delete",
            "document",
            vec![],
            owner.clone(),
            vec![],
        ));
        assert_eq!(
            (d.effect, codes(&d)),
            (Effect::Deny, vec!["no-delete-without-mfa"])
        );
        let mfa = vec![Attribute::boolean("mfa", true)];
        let d = p.decide(&request("documents:delete", "document", vec![], owner, mfa));
        assert_eq!(d.effect, Effect::Allow);
        // not the owner
        let d = p.decide(&request(
            "documents:edit",
            "document",
            vec![],
            vec![Attribute::text("owner", "bob")],
            vec![],
        ));
        assert_eq!(d, Decision::not_applicable());
        // wrong resource kind
        let d = p.decide(&request(
            "documents:edit",
            "folder",
            vec![],
            vec![Attribute::text("owner", "alice")],
            vec![],
        ));
        assert_eq!(d.effect, Effect::NotApplicable);
    }

    #[test]
    fn contains_and_numeric_conditions() {
        let p = policy();
        let auditor = |level: i64| {
            vec![
                Attribute::text_list("roles", ["auditor", "user"]),
                Attribute::integer("level", level),
            ]
        };
        let d = p.decide(&request(
            "documents:read",
            "document",
            auditor(3),
            vec![],
            vec![],
        ));
        assert_eq!(
            (d.effect, codes(&d)),
            (Effect::Allow, vec!["senior-auditors-read"])
        );
        assert_eq!(
            d.reasons[0].message,
            "Auditors of level 3 and above may read every document"
        );
        let d = p.decide(&request(
            "documents:read",
            "document",
            auditor(2),
            vec![],
            vec![],
        ));
        assert_eq!(d.effect, Effect::NotApplicable);
        // a level given as JSON with a fraction still compares numerically
        let attrs = vec![
            Attribute::text_list("roles", ["auditor"]),
            Attribute::json("level", vaultaris_plugin_sdk::Json::from_raw("3.5")),
        ];
        assert_eq!(
            p.decide(&request(
                "documents:read",
                "document",
                attrs,
                vec![],
                vec![]
            ))
            .effect,
            Effect::Allow
        );
        // a level that is text never satisfies a numeric comparison
        let attrs = vec![
            Attribute::text_list("roles", ["auditor"]),
            Attribute::text("level", "9"),
        ];
        assert_eq!(
            p.decide(&request(
                "documents:read",
                "document",
                attrs,
                vec![],
                vec![]
            ))
            .effect,
            Effect::NotApplicable
        );
    }

    #[test]
    fn subject_kinds_in_exists_absent() {
        let p = policy();
        let mut r = request(
            "documents:read",
            "document",
            vec![],
            vec![Attribute::text("classification", "secret")],
            vec![],
        );
        assert_eq!(
            p.decide(&r).effect,
            Effect::NotApplicable,
            "embargo is for clients only"
        );
        r.subject.kind = SubjectKind::Client;
        assert_eq!(codes(&p.decide(&r)), vec!["embargo"]);

        let finance = vec![Attribute::text_list("groups", ["finance"])];
        let ip = vec![Attribute::text("ip_address", "203.0.113.7")];
        let d = p.decide(&request(
            "reports:read",
            "report",
            finance.clone(),
            vec![],
            ip.clone(),
        ));
        assert_eq!(codes(&d), vec!["office-hours-ip"]);
        let d = p.decide(&request(
            "reports:read",
            "report",
            finance.clone(),
            vec![],
            vec![],
        ));
        assert_eq!(d.effect, Effect::NotApplicable, "ip_address must exist");
        let mut banned = finance;
        banned.push(Attribute::boolean("banned", false));
        let d = p.decide(&request(
            "reports:read",
            "report",
            banned,
            vec![],
            ip.clone(),
        ));
        assert_eq!(d.effect, Effect::NotApplicable, "banned must be absent");
        let d = p.decide(&request(
            "reports:read",
            "report",
            vec![Attribute::text_list("groups", ["sales"])],
            vec![],
            ip,
        ));
        assert_eq!(d.effect, Effect::NotApplicable);
    }

    #[test]
    fn batch_keeps_order_and_length() {
        let p = policy();
        let owner = vec![Attribute::text("owner", "alice")];
        let requests = vec![
            request("documents:edit", "document", vec![], owner.clone(), vec![]),
            request("documents:delete", "document", vec![], owner, vec![]),
            request("other", "x", vec![], vec![], vec![]),
        ];
        let d = p
            .evaluate_batch(&CallContext::for_tests(), requests)
            .unwrap();
        let effects: Vec<Effect> = d.iter().map(|d| d.effect).collect();
        assert_eq!(
            effects,
            vec![Effect::Allow, Effect::Deny, Effect::NotApplicable]
        );
    }

    #[test]
    fn reasons_are_capped() {
        let rules: Vec<Value> = (0..20)
            .map(|i| json!({"id": format!("r{i}"), "effect": "allow", "actions": ["*"]}))
            .collect();
        let p = AbacPolicy::new(json!({"rules": rules})).unwrap();
        let d = p.decide(&request("x", "y", vec![], vec![], vec![]));
        assert_eq!(d.reasons.len(), 16);
    }

    #[test]
    fn invalid_configurations() {
        for (config, code) in [
            (json!({}), "invalid_config"),
            (
                json!({"rules": [{"id": "a", "effect": "allow", "actions": []}]}),
                "invalid_rule",
            ),
            (
                json!({"rules": [{"id": "a", "effect": "maybe", "actions": ["*"]}]}),
                "invalid_config",
            ),
            (
                json!({"rules": [{"id": "a", "effect": "allow", "actions": ["*"]}, {"id": "a", "effect": "deny", "actions": ["*"]}]}),
                "duplicate_rule_id",
            ),
            (
                json!({"rules": [{"id": "a", "effect": "allow", "actions": ["*"], "conditions": [{"attribute": "user.x", "op": "exists"}]}]}),
                "invalid_rule",
            ),
            (
                json!({"rules": [{"id": "a", "effect": "allow", "actions": ["*"], "conditions": [{"attribute": "subject.x", "op": "in", "value": "a"}]}]}),
                "invalid_rule",
            ),
            (
                json!({"rules": [{"id": "a", "effect": "allow", "actions": ["*"], "conditions": [{"attribute": "subject.x", "op": "gt", "value": "1"}]}]}),
                "invalid_rule",
            ),
            (
                json!({"rules": [{"id": "a", "effect": "allow", "actions": ["*"], "conditions": [{"attribute": "subject.x", "op": "equals"}]}]}),
                "invalid_rule",
            ),
            (
                json!({"rules": [{"id": "a", "effect": "allow", "actions": ["*"], "conditions": [{"attribute": "subject.x", "op": "exists", "value": 1}]}]}),
                "invalid_rule",
            ),
        ] {
            assert_eq!(
                AbacPolicy::new(config.clone())
                    .err()
                    .map(|e| e.code().to_owned())
                    .as_deref(),
                Some(code),
                "{config}"
            );
        }
    }
}
