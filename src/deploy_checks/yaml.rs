//! YAML files as [`serde_json::Value`]s: anchors resolved, `<<` merge keys applied (Compose's
//! `x-…` fragments use them), duplicate keys refused (Compose refuses them too).

use serde_json::{Map, Value};
use yaml_rust2::{Yaml, YamlLoader};

/// The one document of `text`.
pub(super) fn parse(text: &str) -> Result<Value, String> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| e.to_string())?;
    match docs.as_slice() {
        [] => Ok(Value::Null),
        [doc] => to_json(doc),
        more => Err(format!("{} YAML documents, one expected", more.len())),
    }
}

fn to_json(y: &Yaml) -> Result<Value, String> {
    Ok(match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::Real(s) => s
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Value::String(s.clone()), Value::Number),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Yaml::Hash(hash) => {
            let mut map = Map::new();
            let mut merges = Vec::new();
            for (k, v) in hash {
                let key = match k {
                    Yaml::String(s) if s == "<<" => {
                        merges.push(v);
                        continue;
                    }
                    Yaml::String(s) | Yaml::Real(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    other => return Err(format!("a mapping key that is not a scalar: {other:?}")),
                };
                map.insert(key, to_json(v)?);
            }
            // The mapping's own keys win over merged ones, and earlier merges over later ones.
            for merge in merges {
                let sources: Vec<&Yaml> = match merge {
                    Yaml::Array(items) => items.iter().collect(),
                    one => vec![one],
                };
                for source in sources {
                    let Value::Object(merged) = to_json(source)? else {
                        return Err("`<<` merges something that is not a mapping".to_owned());
                    };
                    for (k, v) in merged {
                        map.entry(k).or_insert(v);
                    }
                }
            }
            Value::Object(map)
        }
        Yaml::Alias(_) | Yaml::BadValue => {
            return Err("an alias without its anchor, or a value of a bad type".to_owned());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn merge_keys_apply_and_own_keys_win() {
        let doc = parse("base: &b {a: 1, b: 2}\nuse:\n  <<: *b\n  b: 3\n").expect("valid YAML");
        assert_eq!(doc["use"], serde_json::json!({"a": 1, "b": 3}));
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let err = parse("a: 1\na: 2\n").expect_err("a duplicate key");
        assert!(err.contains("duplicated key"), "{err}");
    }
}
