//! MMLU (lm-eval `mmlu_<subject>`, version 1.0; group `mmlu` aggregated weight_by_size).
//!
//! lm-eval 0.4 (`tasks/mmlu/default/_default_template_yaml`): `dataset_path: cais/mmlu`,
//! `dataset_name: <subject>`, test split, few-shot = `dev` split with the `first_n` sampler,
//! description "The following are multiple choice questions (with answers) about <subject with
//! _ → space>.\n\n", `doc_to_text: "{{question.strip()}}\nA. {{choices[0]}}\nB.
//! {{choices[1]}}\nC. {{choices[2]}}\nD. {{choices[3]}}\nAnswer:"`, choices
//! ["A","B","C","D"], gold = `answer`, acc only.

use crate::data;
use crate::datasets::{Dataset, Load, SplitRows};
use crate::error::Result;
use crate::fewshot::{data_fingerprint, FewshotSource, McDoc, McTask};

pub const VERSION: f64 = 1.0;
pub const FORMAT_ID: &str =
    "lm-eval mmlu v1.0: desc + {q.strip()}\\nA. ..\\nD. ..\\nAnswer: + ' '+letter; dev first_n";
pub const REPO: &str = "cais/mmlu";

/// The 57 subjects (the configs of `cais/mmlu` lm-eval's `mmlu` group evaluates), sorted.
pub const SUBJECTS: [&str; 57] = [
    "abstract_algebra",
    "anatomy",
    "astronomy",
    "business_ethics",
    "clinical_knowledge",
    "college_biology",
    "college_chemistry",
    "college_computer_science",
    "college_mathematics",
    "college_medicine",
    "college_physics",
    "computer_security",
    "conceptual_physics",
    "econometrics",
    "electrical_engineering",
    "elementary_mathematics",
    "formal_logic",
    "global_facts",
    "high_school_biology",
    "high_school_chemistry",
    "high_school_computer_science",
    "high_school_european_history",
    "high_school_geography",
    "high_school_government_and_politics",
    "high_school_macroeconomics",
    "high_school_mathematics",
    "high_school_microeconomics",
    "high_school_physics",
    "high_school_psychology",
    "high_school_statistics",
    "high_school_us_history",
    "high_school_world_history",
    "human_aging",
    "human_sexuality",
    "international_law",
    "jurisprudence",
    "logical_fallacies",
    "machine_learning",
    "management",
    "marketing",
    "medical_genetics",
    "miscellaneous",
    "moral_disputes",
    "moral_scenarios",
    "nutrition",
    "philosophy",
    "prehistory",
    "professional_accounting",
    "professional_law",
    "professional_medicine",
    "professional_psychology",
    "public_relations",
    "security_studies",
    "sociology",
    "us_foreign_policy",
    "virology",
    "world_religions",
];

/// The 57 subjects, sorted.
pub fn mmlu_subjects() -> Vec<String> {
    SUBJECTS.iter().map(|s| s.to_string()).collect()
}

fn docs(rows: &SplitRows) -> Result<Vec<McDoc>> {
    rows.iter()
        .map(|(path, line, v)| {
            let question = data::get_str(path, line, v, "question")?;
            let choices = data::get_str_list(path, line, v, "choices")?;
            if choices.len() != 4 {
                return Err(data::err(
                    path,
                    line,
                    format!("`choices` has {} entries, not 4", choices.len()),
                ));
            }
            Ok(McDoc {
                text: format!(
                    "{}\nA. {}\nB. {}\nC. {}\nD. {}\nAnswer:",
                    question.trim_matches(|c: char| c.is_whitespace()),
                    choices[0],
                    choices[1],
                    choices[2],
                    choices[3]
                ),
                choices: ["A", "B", "C", "D"].map(String::from).to_vec(),
                gold: data::get_index(path, line, v, "answer", 4)?,
            })
        })
        .collect()
}

/// lm-eval's MMLU description for a subject.
pub fn description(subject: &str) -> String {
    format!(
        "The following are multiple choice questions (with answers) about {}.\n\n",
        subject.replace('_', " ")
    )
}

#[derive(Debug)]
pub struct Mmlu(pub McTask);

impl Mmlu {
    /// `mmlu_<subject>`: the subject's test split, and its dev split for few-shot examples.
    pub fn load(load: &Load, subject: &str) -> Result<Self> {
        let known = SUBJECTS.iter().find(|s| **s == subject).ok_or_else(|| {
            crate::EvalError::UnknownTask {
                name: format!("mmlu_{subject}"),
                suggestion: SUBJECTS
                    .iter()
                    .map(|s| (strsim::jaro_winkler(subject, s), s))
                    .filter(|(score, _)| *score >= 0.8)
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|(_, s)| format!("mmlu_{s}")),
            }
        })?;
        let ds = Dataset::new(REPO, Some(known));
        let test = load.split(&ds, "test")?;
        let dev = load.fewshot_split(&ds, "dev")?;
        let name = format!("mmlu_{subject}");
        let mut splits = vec![&test];
        splits.extend(dev.as_ref());
        let fewshot = match &dev {
            Some(d) => FewshotSource::FirstN(docs(d)?),
            None => FewshotSource::None,
        };
        let fp = data_fingerprint(&name, &splits, VERSION, FORMAT_ID);
        let mut t = McTask::new(
            name,
            VERSION,
            docs(&test)?,
            description(subject),
            fewshot,
            false,
            fp,
            0,
        );
        t.datasets = splits.iter().map(|s| s.record.clone()).collect();
        Ok(Mmlu(t))
    }
}

crate::delegate_mc_task!(Mmlu);
