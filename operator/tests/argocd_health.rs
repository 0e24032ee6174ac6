//! The Argo CD health checks in `config/argocd/sluice.dev/<Kind>/health.lua`,
//! run the way Argo CD runs them: Lua 5.1 (Argo CD embeds gopher-lua, a Lua 5.1)
//! with only the base and table libraries, the object as the global `obj`, and
//! the returned `{status, message}` compared with each case of the kind's
//! `health_test.yaml` (Argo CD's own test format). `config/argocd/argocd-cm.yaml`
//! must carry the same scripts byte for byte; `UPDATE_GOLDEN=1` rewrites it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use mlua::{Lua, LuaOptions, StdLib, Table};
use serde::Deserialize;
use serde_json::Value;

/// Each kind with health checks, and the fewest cases its `health_test.yaml` may hold.
const KINDS: [(&str, usize); 2] = [("StreamJob", 20), ("StreamSavepoint", 6)];

fn root() -> PathBuf {
    sluice_e2e::repo_root()
}

fn checks_dir() -> PathBuf {
    root().join("config/argocd/sluice.dev")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HealthTests {
    tests: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Case {
    health_status: Health,
    input_path: String,
}

/// Argo CD's `HealthStatus`; an absent message is the empty string, as in Argo CD's tests.
#[derive(Deserialize, Debug, PartialEq)]
struct Health {
    status: String,
    #[serde(default)]
    message: String,
}

/// JSON → Lua as Argo CD's `decodeValue` does it: null is nil (so the key is
/// absent), arrays are 1-based sequences, every number is a Lua 5.1 number.
fn to_lua(lua: &Lua, v: &Value) -> mlua::Result<mlua::Value> {
    Ok(match v {
        Value::Null => mlua::Value::Nil,
        Value::Bool(b) => mlua::Value::Boolean(*b),
        Value::Number(n) => mlua::Value::Number(n.as_f64().unwrap()),
        Value::String(s) => mlua::Value::String(lua.create_string(s)?),
        Value::Array(items) => {
            let t = lua.create_table()?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, item)?)?;
            }
            mlua::Value::Table(t)
        }
        Value::Object(fields) => {
            let t = lua.create_table()?;
            for (k, item) in fields {
                t.raw_set(k.as_str(), to_lua(lua, item)?)?;
            }
            mlua::Value::Table(t)
        }
    })
}

/// Runs `script` on `obj` in a fresh state, so that no case sees another's globals.
fn run(script: &str, name: &str, obj: &Value) -> mlua::Result<Health> {
    let lua = Lua::new_with(StdLib::TABLE, LuaOptions::default())?;
    lua.globals().set("obj", to_lua(&lua, obj)?)?;
    let out: Table = lua.load(script).set_name(name).eval()?;
    Ok(Health {
        status: out.get::<Option<String>>("status")?.unwrap_or_default(),
        message: out.get::<Option<String>>("message")?.unwrap_or_default(),
    })
}

fn kind_dirs() -> BTreeSet<String> {
    fs::read_dir(checks_dir()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect()
}

#[test]
fn health_checks_pass_their_test_cases() {
    let expected_kinds: BTreeSet<String> = KINDS.iter().map(|(k, _)| k.to_string()).collect();
    assert_eq!(
        kind_dirs(),
        expected_kinds,
        "a kind under {} without a test here, or the reverse",
        checks_dir().display()
    );

    let mut failures = Vec::new();
    for (kind, min_cases) in KINDS {
        let dir = checks_dir().join(kind);
        let script = fs::read_to_string(dir.join("health.lua")).unwrap();
        let tests_file = dir.join("health_test.yaml");
        let tests: HealthTests = serde_yaml::from_str(&fs::read_to_string(&tests_file).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", tests_file.display()));
        assert!(
            tests.tests.len() >= min_cases,
            "{}: {} cases, expected at least {min_cases}",
            tests_file.display(),
            tests.tests.len()
        );

        let mut used = BTreeSet::new();
        for case in &tests.tests {
            let input = dir.join(&case.input_path);
            used.insert(input.clone());
            let obj: Value = serde_yaml::from_str(&fs::read_to_string(&input).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", input.display()));
            assert_eq!(obj["kind"], kind, "{}: not a {kind}", input.display());
            let where_ = format!("{kind}/health_test.yaml, case {}", case.input_path);
            match run(&script, &format!("{kind}/health.lua"), &obj) {
                Ok(got) if got == case.health_status => {}
                Ok(got) => failures.push(format!("{where_}: expected {:?}, got {got:?}", case.health_status)),
                Err(e) => failures.push(format!("{where_}: the script failed: {e}")),
            }
        }

        let unused: Vec<_> = fs::read_dir(dir.join("testdata"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| !used.contains(p))
            .collect();
        assert!(unused.is_empty(), "testdata that no case of {} reads: {unused:?}", tests_file.display());
    }
    assert!(failures.is_empty(), "{} failing cases:\n{}", failures.len(), failures.join("\n"));
}

const CM_KEY_PREFIX: &str = "resource.customizations.health.sluice.dev_";

/// `config/argocd/argocd-cm.yaml` as it should read: the health.lua files inlined.
fn render_argocd_cm() -> String {
    let mut out = String::from(
        "# Sluice's Argo CD health checks as a patch of Argo CD's argocd-cm ConfigMap:\n\
         #   kubectl -n argocd patch configmap argocd-cm --patch-file config/argocd/argocd-cm.yaml\n\
         # Generated from sluice.dev/<Kind>/health.lua; edit those, then run\n\
         #   UPDATE_GOLDEN=1 cargo test -p sluice-operator --test argocd_health\n\
         apiVersion: v1\n\
         kind: ConfigMap\n\
         metadata:\n  name: argocd-cm\n  namespace: argocd\n\
         data:\n",
    );
    for (kind, _) in KINDS {
        let script = fs::read_to_string(checks_dir().join(kind).join("health.lua")).unwrap();
        out.push_str(&format!("  {CM_KEY_PREFIX}{kind}: |\n"));
        for line in script.lines() {
            if line.is_empty() {
                out.push('\n');
            } else {
                out.push_str(&format!("    {line}\n"));
            }
        }
    }
    out
}

#[test]
fn argocd_cm_carries_the_health_scripts() {
    let path = root().join("config/argocd/argocd-cm.yaml");
    let rendered = render_argocd_cm();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::write(&path, &rendered).unwrap();
    }
    let on_disk = fs::read_to_string(&path).unwrap();

    // What Argo CD reads: each key's value, exactly the script.
    let cm: Value = serde_yaml::from_str(&on_disk).unwrap();
    for (kind, _) in KINDS {
        let script = fs::read_to_string(checks_dir().join(kind).join("health.lua")).unwrap();
        let key = format!("{CM_KEY_PREFIX}{kind}");
        assert_eq!(
            cm["data"][&key].as_str(),
            Some(script.as_str()),
            "{} data.{key} differs from {kind}/health.lua; run UPDATE_GOLDEN=1 cargo test -p sluice-operator --test argocd_health",
            path.display()
        );
    }
    assert_eq!(on_disk, rendered, "{} is stale; run with UPDATE_GOLDEN=1", path.display());
}
