//! The native glue in process, without `dlopen`: the entry point a plugin
//! exports, its manifest, instances per activation with their own
//! configuration, calls in both directions, panics and unknown functions.

use std::sync::Mutex;

use stabby::slice::Slice;
use stabby::vec::Vec as AbiVec;

use super::abi::*;
use super::functions::{self as f, capability as c};
use super::wire::{decode, encode};
use crate::bindings::jwt_customizer as raw;
use crate::jwt::{Customization, JwtCustomizer, TokenRequest};
use crate::{CallContext, Plugin, PluginError, parse_config};

#[derive(serde::Deserialize)]
struct Tier {
    tier: String,
}

impl Plugin for Tier {
    fn new(config: serde_json::Value) -> Result<Self, PluginError> {
        parse_config(config)
    }
}

impl JwtCustomizer for Tier {
    fn customize(&self, _: &CallContext, r: TokenRequest) -> Result<Customization, PluginError> {
        if r.client_id == "panic" {
            panic!("asked to panic");
        }
        let n = crate::host::kv::increment("calls", 1, None)?;
        Ok(Customization::none()
            .with_claim("tier", &self.tier.as_str().into())
            .with_claim("calls", &n.into()))
    }
}

crate::export_plugin!(Tier: jwt_customizer);

// The entry point as the server sees it: by its symbol.
unsafe extern "C" {
    fn vaultaris_plugin_abi_v1() -> FactoryHandle;
}

fn entry() -> FactoryHandle {
    // SAFETY: defined by `export_plugin!` above with this signature.
    unsafe { vaultaris_plugin_abi_v1() }
}

/// A host with one configuration and a counter, recording what it served.
struct TestHost {
    config: &'static str,
    counter: Mutex<i64>,
    served: Mutex<Vec<u32>>,
}

impl HostAbi for TestHost {
    extern "C" fn capability<'a>(&'a self, function: u32, input: Slice<'a, u8>) -> AbiVec<u8> {
        self.served.lock().unwrap().push(function);
        let out = match function {
            c::CONFIG_GET_ALL => encode(&self.config),
            c::KV_INCREMENT => {
                let (_key, delta, _ttl): (String, i64, Option<u64>) = decode(&input).unwrap();
                let mut n = self.counter.lock().unwrap();
                *n += delta;
                let ok: Result<i64, raw::PluginError> = Ok(*n);
                // `result<s64, kv-error>`: the Ok case encodes the same.
                encode(&ok)
            }
            _ => Vec::new(),
        };
        AbiVec::from(out.as_slice())
    }
}

fn host(config: &'static str) -> HostHandle {
    stabby::sync::Arc::new(TestHost {
        config,
        counter: Mutex::new(0),
        served: Mutex::new(Vec::new()),
    })
    .into()
}

fn request(client_id: &str) -> Vec<u8> {
    let cx = raw::CallContext {
        tenant: "t".into(),
        plugin_id: "p".into(),
        request_id: "r".into(),
        now: 0,
        deadline: 50,
    };
    let req = raw::TokenRequest {
        kind: raw::TokenKind::Access,
        subject: None,
        client_id: client_id.into(),
        grant_type: "client_credentials".into(),
        scopes: vec![],
        audience: vec![],
        subject_attributes: vec![],
        claims: vec![],
    };
    encode(&(cx, req))
}

fn customize(inst: &mut InstanceHandle, client_id: &str) -> Result<Vec<u8>, String> {
    let input = request(client_id);
    let out = inst.call(f::JWT_CUSTOMIZER_CUSTOMIZE, input.as_slice().into());
    out.match_owned(|v| Ok(v.to_vec()), |e| Err(e.as_str().to_owned()))
}

#[test]
fn the_entry_point_checks_its_report_and_describes_the_plugin() {
    assert!(entry_compatible(entry_report()));
    let factory = entry();
    let m = factory.manifest();
    assert_eq!(m.abi_version, ABI_VERSION);
    assert_eq!(m.contract.as_str(), crate::CONTRACT_VERSION);
    assert_eq!(
        m.id.as_str(),
        "sdk",
        "the crate name without vaultaris-plugin-"
    );
    let jwt = crate::Category::ALL
        .iter()
        .position(|c| *c == crate::Category::JwtCustomizer)
        .unwrap();
    assert_eq!(m.categories, 1 << jwt);
}

#[test]
fn instances_keep_their_own_configuration_and_reach_their_own_host() {
    let factory = entry();
    let mut gold = factory.create(host(r#"{"tier":"gold"}"#));
    let mut free = factory.create(host(r#"{"tier":"free"}"#));
    let check = |inst: &mut InstanceHandle, tier: &str, calls: i64| {
        let out: Result<raw::Customization, raw::PluginError> =
            decode(&customize(inst, "c").unwrap()).unwrap();
        let add = out.unwrap().add;
        assert_eq!(add[0].value, format!("{tier:?}"));
        assert_eq!(add[1].value, calls.to_string());
    };
    check(&mut gold, "gold", 1);
    check(&mut free, "free", 1);
    check(&mut gold, "gold", 2);
}

#[test]
fn configuration_errors_are_plugin_errors() {
    let factory = entry();
    let mut inst = factory.create(host("{}"));
    let out: Result<raw::Customization, raw::PluginError> =
        decode(&customize(&mut inst, "c").unwrap()).unwrap();
    assert!(
        matches!(out, Err(raw::PluginError::Misconfigured(_))),
        "{out:?}"
    );
}

#[test]
fn panics_and_unknown_functions_are_errors_not_unwinding() {
    let factory = entry();
    let mut inst = factory.create(host(r#"{"tier":"gold"}"#));
    let err = customize(&mut inst, "panic").unwrap_err();
    assert!(err.starts_with("panic at "), "{err}");
    assert!(err.ends_with("asked to panic"), "{err}");
    let out = inst.call(f::AUDIT_SINK_DELIVER, request("c").as_slice().into());
    let err = out.match_owned(|_| String::new(), |e| e.as_str().to_owned());
    assert!(err.contains("not exported"), "{err}");
    let out = inst.call(f::JWT_CUSTOMIZER_CUSTOMIZE, [1u8, 2, 3].as_slice().into());
    let err = out.match_owned(|_| String::new(), |e| e.as_str().to_owned());
    assert!(err.contains("undecodable arguments"), "{err}");
}
