//! The operator's paged lists on a real API server: every object of a list longer than a
//! page comes back once, without its managedFields; names alone from metadata pages.

use std::collections::BTreeSet;

use anyhow::{Result, ensure};
use hsn_operator::lists::{self, PAGE};
use hsn_testkit::ControlPlane;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_longer_than_a_page_comes_back_whole_and_lean() -> Result<()> {
    let hub = ControlPlane::start().await?;
    let api: Api<ConfigMap> = Api::namespaced(hub.client(), "default");
    // Two pages and a part, plus one object the selector leaves out.
    let count = PAGE as usize * 2 + 7;
    for i in 0..=count {
        let labels = if i < count {
            json!({"paged": "yes"})
        } else {
            json!({"paged": "no"})
        };
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": format!("cm-{i:03}"), "labels": labels},
            "data": {"i": i.to_string()}
        }))?;
        api.create(&PostParams::default(), &cm).await?;
    }
    let lp = ListParams::default().labels("paged=yes");

    let mut seen = 0;
    let got = lists::list(&api, &lp, |cm| {
        seen += 1;
        (
            cm.metadata.name.clone().unwrap_or_default(),
            cm.metadata.managed_fields.is_some(),
        )
    })
    .await?;
    let names: BTreeSet<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    ensure!(
        seen == count && got.len() == count,
        "{} of {count} read",
        got.len()
    );
    ensure!(names.len() == count, "an object came back twice");
    ensure!(
        !names.contains(format!("cm-{count:03}").as_str()),
        "the selector is kept across pages"
    );
    ensure!(
        got.iter().all(|(_, managed)| !managed),
        "managedFields are dropped before `keep` sees an object"
    );

    let by_name = lists::names(&api, &lp).await?;
    let by_name: BTreeSet<&str> = by_name.iter().map(String::as_str).collect();
    ensure!(by_name == names, "names: {} of {count}", by_name.len());
    Ok(())
}
