//! Installing CustomResourceDefinitions the way a user does: create them, then wait until
//! the API server serves them (`Established`).

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, PostParams};

use crate::Error;
use crate::wait::wait_for;

/// Creates `crds` and waits (at most `deadline` each) until every one is Established.
pub async fn install_crds(
    client: &Client,
    crds: &[CustomResourceDefinition],
    deadline: Duration,
) -> Result<(), Error> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.create(&PostParams::default(), crd)
            .await
            .map_err(|source| Error::Api {
                action: format!("creating CRD {name}"),
                source,
            })?;
    }
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        wait_for(&format!("CRD {name} Established"), deadline, || {
            let api = api.clone();
            let name = name.clone();
            async move {
                let crd = api.get(&name).await.ok()?;
                crd.status?
                    .conditions?
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                    .then_some(())
            }
        })
        .await?;
    }
    Ok(())
}
