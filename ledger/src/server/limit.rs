//! The item limit of `SubmitRecords`, checked on the request's bytes before tonic decodes
//! them (a request of millions of empty items is small on the wire and huge decoded). A
//! request over the limit is answered `RESOURCE_EXHAUSTED` (`too_many`, item `request`), as
//! the service answers it, and counted; others go on untouched. The body is read within
//! the request size limit; a larger one is answered `OUT_OF_RANGE` as tonic would.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body_util::{BodyExt as _, Full, Limited};
use tonic::body::Body;

use crate::ledger::encoded_items;
use crate::metrics::{Metrics, ReasonLabels};
use hsn_ledger_api::refusal::{ITEM_METADATA, REASON_METADATA, Reason};

const SUBMIT: &str = "/hsn.ledger.v1.Ledger/SubmitRecords";

/// Adds [`ItemLimit`] in front of the gRPC routes.
#[derive(Clone, Debug)]
pub(super) struct ItemLimitLayer {
    pub(super) max_items: usize,
    pub(super) max_request_bytes: usize,
    pub(super) metrics: Metrics,
}

impl<S> tower::Layer<S> for ItemLimitLayer {
    type Service = ItemLimit<S>;

    fn layer(&self, inner: S) -> ItemLimit<S> {
        ItemLimit {
            inner,
            limits: self.clone(),
        }
    }
}

/// The service [`ItemLimitLayer`] makes.
#[derive(Clone, Debug)]
pub(super) struct ItemLimit<S> {
    inner: S,
    limits: ItemLimitLayer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> tower::Service<http::Request<Body>> for ItemLimit<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if request.uri().path() != SUBMIT {
            return Box::pin(self.inner.call(request));
        }
        // The clone that was polled ready serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let limits = self.limits.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            // A gRPC frame: a compression flag, a 4-byte length, the message.
            let read = Limited::new(body, limits.max_request_bytes + 5)
                .collect()
                .await;
            let bytes = match read {
                Ok(collected) => collected.to_bytes(),
                Err(_) => {
                    return Ok(refusal(
                        tonic::Code::OutOfRange,
                        None,
                        "request over the size limit",
                    ));
                }
            };
            let message = bytes.get(5..).unwrap_or_default();
            let compressed = bytes.first().is_some_and(|&flag| flag != 0);
            if !compressed
                && let Some(items) = encoded_items(message).filter(|&n| n > limits.max_items)
            {
                limits
                    .metrics
                    .refused
                    .get_or_create(&ReasonLabels {
                        reason: Reason::TooMany.label(),
                    })
                    .inc();
                let message = format!(
                    "request: {items} items in one request, at most {} allowed",
                    limits.max_items
                );
                return Ok(refusal(
                    tonic::Code::ResourceExhausted,
                    Some(Reason::TooMany),
                    &message,
                ));
            }
            let request = http::Request::from_parts(parts, Body::new(Full::new(bytes)));
            inner.call(request).await
        })
    }
}

/// A trailers-only gRPC response carrying `code`, a message and the refusal reason.
fn refusal(code: tonic::Code, reason: Option<Reason>, message: &str) -> http::Response<Body> {
    let mut status = tonic::Status::new(code, message);
    if let Some(reason) = reason {
        let meta = status.metadata_mut();
        meta.insert(
            REASON_METADATA,
            tonic::metadata::MetadataValue::from_static(reason.label()),
        );
        meta.insert(
            ITEM_METADATA,
            tonic::metadata::MetadataValue::from_static("request"),
        );
    }
    status.into_http()
}
