//! Reading Hugging Face `config.json` keys with errors that name the key, and the RoPE settings
//! every family shares (`rope_theta`, `rope_scaling`, transformers 5's `rope_parameters`).

use serde_json::{Map, Value};

/// A `config.json` object with errors that name the key.
pub(crate) struct Keys<'a> {
    pub(crate) map: &'a Map<String, Value>,
}

pub(crate) type KeyResult<T> = std::result::Result<T, String>;

impl<'a> Keys<'a> {
    /// The value of `key` unless it is absent or null.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub(crate) fn usize(&self, key: &str) -> KeyResult<usize> {
        self.usize_or(key, None)
    }

    pub(crate) fn usize_or(&self, key: &str, default: Option<usize>) -> KeyResult<usize> {
        match self.get(key) {
            None => default.ok_or_else(|| format!("field `{key}`: missing")),
            Some(v) => v
                .as_u64()
                .map(|x| x as usize)
                .ok_or_else(|| format!("field `{key}`: {v} is not a non-negative integer")),
        }
    }

    pub(crate) fn f64_or(&self, key: &str, default: f64) -> KeyResult<f64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| format!("field `{key}`: {v} is not a number")),
        }
    }

    pub(crate) fn bool_or(&self, key: &str, default: bool) -> KeyResult<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| format!("field `{key}`: {v} is not true or false")),
        }
    }

    pub(crate) fn str_or(&self, key: &str, default: &'a str) -> KeyResult<&'a str> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_str()
                .ok_or_else(|| format!("field `{key}`: {v} is not a string")),
        }
    }

    pub(crate) fn token_id(&self, key: &str) -> Option<u32> {
        match self.get(key)? {
            Value::Number(n) => n.as_u64().map(|x| x as u32),
            Value::Array(a) => a.first().and_then(|x| x.as_u64()).map(|x| x as u32),
            _ => None,
        }
    }
}

/// RoPE settings from `rope_parameters` (transformers 5) or the older `rope_scaling` and
/// `rope_theta` keys: the base and the partial-rotary factor if given. Anything but plain RoPE is
/// refused, naming the key.
pub(crate) fn rope_settings(
    map: &Map<String, Value>,
    theta_key: &str,
) -> KeyResult<(Option<f64>, Option<f64>)> {
    let keys = Keys { map };
    for key in ["rope_scaling", "rope_parameters"] {
        let Some(v) = keys.get(key) else { continue };
        let Some(obj) = v.as_object() else {
            return Err(format!("field `{key}`: {v} is not an object"));
        };
        let kind = obj
            .get("rope_type")
            .or_else(|| obj.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("default");
        if kind != "default" {
            return Err(format!(
                "field `{key}`: RoPE type `{kind}` is not supported (only plain RoPE, `default`)"
            ));
        }
        for (k, _) in obj.iter().filter(|(_, v)| !v.is_null()) {
            if !matches!(
                k.as_str(),
                "rope_type" | "type" | "rope_theta" | "partial_rotary_factor"
            ) {
                return Err(format!(
                    "field `{key}.{k}`: not supported with plain RoPE (k2 reads rope_type, \
                     rope_theta and partial_rotary_factor)"
                ));
            }
        }
    }
    let params = keys.get("rope_parameters").and_then(Value::as_object);
    let from_params = |k: &str| params.and_then(|p| p.get(k)).and_then(Value::as_f64);
    let theta = match keys.get(theta_key) {
        Some(v) => Some(
            v.as_f64()
                .ok_or_else(|| format!("field `{theta_key}`: {v} is not a number"))?,
        ),
        None => from_params("rope_theta"),
    };
    Ok((theta, from_params("partial_rotary_factor")))
}
