//! Agent pods that stay Pending: not placed by the member's scheduler, or with a container
//! that cannot start. Read from the pods fetch lists once per member per reconcile; a member
//! whose pods cannot be read reports none (the counts of ready agents still tell the network
//! is not Ready).

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

/// Why pods stay Pending: each (pod, what its status says), sorted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stuck {
    /// `PodScheduled=False`, reason `Unschedulable`: the scheduler's message.
    pub unschedulable: Vec<(String, String)>,
    /// A container waiting for a reason that does not pass by itself (image, configuration,
    /// crash loop): the reason and message.
    pub failing: Vec<(String, String)>,
}

/// Container waiting reasons that need a change to pass.
const FAILING: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "CrashLoopBackOff",
];

/// Whether `pod` is stuck: at most one entry in each list, its name and why.
pub fn of(pod: &Pod) -> Stuck {
    let mut out = Stuck::default();
    let Some(status) = &pod.status else {
        return out;
    };
    let unscheduled = status.conditions.iter().flatten().find(|c| {
        c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
    });
    if let Some(c) = unscheduled {
        out.unschedulable
            .push((pod.name_any(), c.message.clone().unwrap_or_default()));
    }
    let waiting = status
        .container_statuses
        .iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.waiting.as_ref())
        .find(|w| w.reason.as_deref().is_some_and(|r| FAILING.contains(&r)));
    if let Some(w) = waiting {
        let why = format!(
            "{}: {}",
            w.reason.as_deref().unwrap_or_default(),
            w.message.as_deref().unwrap_or_default()
        );
        out.failing.push((pod.name_any(), why));
    }
    out
}

/// All pods' stuck entries, sorted by pod name.
impl FromIterator<Stuck> for Stuck {
    fn from_iter<I: IntoIterator<Item = Stuck>>(iter: I) -> Self {
        let mut out = Stuck::default();
        for s in iter {
            out.unschedulable.extend(s.unschedulable);
            out.failing.extend(s.failing);
        }
        out.unschedulable.sort();
        out.failing.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stuck(pods: &[Pod]) -> Stuck {
        pods.iter().map(of).collect()
    }

    #[test]
    fn pods_the_scheduler_cannot_place_or_that_cannot_start_are_stuck() {
        let pods: Vec<Pod> = serde_json::from_value(serde_json::json!([
            {"metadata": {"name": "running"}, "status": {"phase": "Running",
                "conditions": [{"type": "PodScheduled", "status": "True"}]}},
            {"metadata": {"name": "placed-soon"}, "status": {"phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}},
            {"metadata": {"name": "super-1"}, "status": {"phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                    "message": "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules."}]}},
            {"metadata": {"name": "edge-x"}, "status": {"phase": "Pending",
                "containerStatuses": [{"name": "agent", "image": "a b", "imageID": "", "ready": false,
                    "restartCount": 0, "state": {"waiting": {"reason": "InvalidImageName",
                    "message": "couldn't parse image name \"a b\""}}}]}},
            {"metadata": {"name": "edge-y"}, "status": {"phase": "Pending",
                "containerStatuses": [{"name": "agent", "image": "a", "imageID": "", "ready": false,
                    "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]}}
        ]))
        .unwrap();
        let s = stuck(&pods);
        assert_eq!(
            s.unschedulable,
            [(
                "super-1".to_string(),
                "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules."
                    .to_string()
            )]
        );
        assert_eq!(
            s.failing,
            [(
                "edge-x".to_string(),
                "InvalidImageName: couldn't parse image name \"a b\"".to_string()
            )]
        );
    }
}
