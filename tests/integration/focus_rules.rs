//! A checker of FOCUS 1.2 column rules for a CSV file, written from the specification's column
//! pages (https://focus.finops.org/focus-specification/v1-2/, section "Columns", and the
//! attributes DateTimeFormat, NumericFormat, KeyValueFormat, ColumnNamingAndOrdering). The
//! FinOps Foundation's own validator on PyPI (`focus-validator` 1.0.0, the only release) knows
//! FOCUS 0.5, 1.0-preview and 1.0 only, so it cannot check a 1.2 dataset; see docs/OUTPUTS.md.
//!
//! It checks what a column page states as MUST: presence of the mandatory columns, types and
//! formats, allowed values, nullability, and the rules between columns. It returns every
//! violation found (row numbers count data rows from 1).

use std::collections::HashMap;

/// The columns FOCUS 1.2 marks Mandatory (feature level), each with whether it allows nulls.
const MANDATORY: [(&str, bool); 21] = [
    ("BilledCost", false),
    ("BillingAccountId", false),
    ("BillingAccountName", true),
    ("BillingCurrency", false),
    ("BillingPeriodEnd", false),
    ("BillingPeriodStart", false),
    ("ChargeCategory", false),
    ("ChargeClass", true),
    ("ChargeDescription", true),
    ("ChargePeriodEnd", false),
    ("ChargePeriodStart", false),
    ("ContractedCost", false),
    ("EffectiveCost", false),
    ("InvoiceIssuerName", false),
    ("ListCost", false),
    ("PricingQuantity", true),
    ("PricingUnit", true),
    ("ProviderName", false),
    ("PublisherName", false),
    ("ServiceCategory", false),
    ("ServiceName", false),
];

/// Columns of type Decimal (NumericFormat).
const DECIMALS: [&str; 9] = [
    "BilledCost",
    "ContractedCost",
    "EffectiveCost",
    "ListCost",
    "PricingQuantity",
    "ConsumedQuantity",
    "ListUnitPrice",
    "ContractedUnitPrice",
    "CommitmentDiscountQuantity",
];

/// Columns of type Date/Time (DateTimeFormat).
const DATETIMES: [&str; 4] = ["BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd"];

/// Columns with a closed list of values (nullable ones also allow the empty field).
fn allowed(column: &str) -> Option<&'static [&'static str]> {
    Some(match column {
        "ChargeCategory" => &["Usage", "Purchase", "Tax", "Credit", "Adjustment"],
        "ChargeClass" => &["Correction"],
        "ChargeFrequency" => &["One-Time", "Recurring", "Usage-Based"],
        "PricingCategory" => &["Standard", "Dynamic", "Committed", "Other"],
        "ServiceCategory" => &[
            "AI and Machine Learning",
            "Analytics",
            "Business Applications",
            "Compute",
            "Databases",
            "Developer Tools",
            "Multicloud",
            "Identity",
            "Integration",
            "Internet of Things",
            "Management and Governance",
            "Media",
            "Migration",
            "Mobile",
            "Networking",
            "Security",
            "Storage",
            "Web",
            "Other",
        ],
        _ => return None,
    })
}

/// ServiceSubcategory values FOCUS 1.2 allows under "AI and Machine Learning".
const AI_SUBCATEGORIES: [&str; 6] = [
    "AI Platforms",
    "Bots",
    "Generative AI",
    "Machine Learning",
    "Natural Language Processing",
    "Other (AI and Machine Learning)",
];

fn is_datetime(value: &str) -> bool {
    // DateTimeFormat: ISO 8601 combined date and time in UTC, `YYYY-MM-DDTHH:mm:ssZ`.
    value.len() == 20
        && value.ends_with('Z')
        && chrono::NaiveDateTime::parse_from_str(&value[..19], "%Y-%m-%dT%H:%M:%S").is_ok()
}

fn is_decimal(value: &str) -> bool {
    // NumericFormat: an optional sign, digits, an optional fraction; no thousands separators,
    // currency symbols or units.
    let digits = value.strip_prefix('-').unwrap_or(value);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    !whole.is_empty()
        && !fraction.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

fn is_pascal_case(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_uppercase()) && name.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Every violation of the FOCUS 1.2 column rules in `csv` (header and data rows).
pub fn violations(csv: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(csv.as_bytes());
    let header: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(str::to_string).collect(),
        Err(e) => return vec![format!("header: {e}")],
    };
    // Column naming: FOCUS columns in PascalCase, alphanumeric; custom columns prefixed `x_`.
    for name in &header {
        if !name.starts_with("x_") && !is_pascal_case(name) {
            found.push(format!("column {name}: not PascalCase and not a custom x_ column"));
        }
    }
    for (column, _) in MANDATORY {
        if !header.iter().any(|h| h == column) {
            found.push(format!("column {column}: mandatory in FOCUS 1.2 but absent"));
        }
    }
    for (index, record) in reader.records().enumerate() {
        let row = index + 1;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                found.push(format!("row {row}: {e}"));
                continue;
            }
        };
        let cells: HashMap<&str, &str> = header.iter().map(String::as_str).zip(record.iter()).collect();
        let value = |column: &str| cells.get(column).copied().filter(|v| !v.is_empty());
        let mut fail = |message: String| found.push(format!("row {row}: {message}"));
        for (column, nullable) in MANDATORY {
            if !nullable && cells.contains_key(column) && value(column).is_none() {
                fail(format!("{column} is null; FOCUS 1.2 does not allow nulls there"));
            }
        }
        for column in DECIMALS {
            if let Some(v) = value(column).filter(|v| !is_decimal(v)) {
                fail(format!("{column} = {v:?} is not a decimal in NumericFormat"));
            }
        }
        for column in DATETIMES {
            if let Some(v) = value(column).filter(|v| !is_datetime(v)) {
                fail(format!("{column} = {v:?} is not YYYY-MM-DDTHH:mm:ssZ"));
            }
        }
        for column in &header {
            if let (Some(list), Some(v)) = (allowed(column), value(column))
                && !list.contains(&v)
            {
                fail(format!("{column} = {v:?} is not an allowed value"));
            }
        }
        if let Some(v) = value("BillingCurrency")
            && !(v.len() == 3 && v.bytes().all(|b| b.is_ascii_uppercase()))
        {
            fail(format!("BillingCurrency = {v:?} is not an ISO 4217 alphabetic code"));
        }
        if let Some(sub) = value("ServiceSubcategory")
            && value("ServiceCategory") == Some("AI and Machine Learning")
            && !AI_SUBCATEGORIES.contains(&sub)
        {
            fail(format!("ServiceSubcategory = {sub:?} is not a subcategory of AI and Machine Learning"));
        }
        if let Some(tags) = value("Tags") {
            // KeyValueFormat: a JSON object; keys unique strings, values strings, numbers, booleans or null.
            match serde_json::from_str::<serde_json::Value>(tags) {
                Ok(serde_json::Value::Object(map)) => {
                    if map.values().any(|v| v.is_array() || v.is_object()) {
                        fail(format!("Tags = {tags:?}: values must be primitive"));
                    }
                }
                _ => fail(format!("Tags = {tags:?} is not a JSON object")),
            }
        }
        // Periods: start before end, ISO strings of one format order as instants; the charge
        // period lies within the billing period.
        let period =
            |start: &str, end: &str| value(start).zip(value(end)).filter(|(s, e)| is_datetime(s) && is_datetime(e));
        if let Some((start, end)) = period("BillingPeriodStart", "BillingPeriodEnd")
            && start >= end
        {
            fail(format!("BillingPeriodStart {start} is not before BillingPeriodEnd {end}"));
        }
        if let Some((start, end)) = period("ChargePeriodStart", "ChargePeriodEnd") {
            if start >= end {
                fail(format!("ChargePeriodStart {start} is not before ChargePeriodEnd {end}"));
            }
            if let Some((billing_start, billing_end)) = period("BillingPeriodStart", "BillingPeriodEnd")
                && (start < billing_start || end > billing_end)
            {
                fail(format!(
                    "charge period {start}..{end} is outside the billing period {billing_start}..{billing_end}"
                ));
            }
        }
        // Nullability that depends on ChargeCategory and ChargeClass.
        let category = value("ChargeCategory");
        let correction = value("ChargeClass") == Some("Correction");
        let usage_or_purchase = matches!(category, Some("Usage" | "Purchase")) && !correction;
        if usage_or_purchase && value("PricingQuantity").is_none() {
            fail("PricingQuantity is null on a Usage or Purchase row".into());
        }
        if category == Some("Tax") && value("PricingQuantity").is_some() {
            fail("PricingQuantity is set on a Tax row".into());
        }
        if value("PricingQuantity").is_some() != value("PricingUnit").is_some() {
            fail("PricingUnit must be set exactly when PricingQuantity is".into());
        }
        if header.iter().any(|h| h == "ConsumedQuantity") {
            if category == Some("Usage") && !correction && value("ConsumedQuantity").is_none() {
                fail("ConsumedQuantity is null on a Usage row".into());
            }
            if value("ConsumedQuantity").is_some() != value("ConsumedUnit").is_some() {
                fail("ConsumedUnit must be set exactly when ConsumedQuantity is".into());
            }
        }
        if header.iter().any(|h| h == "SkuId") && usage_or_purchase && value("SkuId").is_none() {
            fail("SkuId is null on a Usage or Purchase row".into());
        }
        if header.iter().any(|h| h == "PricingCategory") && usage_or_purchase && value("PricingCategory").is_none() {
            fail("PricingCategory is null on a Usage or Purchase row".into());
        }
        if header.iter().any(|h| h == "ResourceName")
            && value("ResourceName").is_some()
            && value("ResourceId").is_none()
        {
            fail("ResourceName is set without ResourceId".into());
        }
    }
    found
}
