//! The kubelet API subset that `kubectl logs` uses (placeholder until served over TLS).

use std::sync::Arc;

use super::Ctx;

pub async fn serve(_ctx: Arc<Ctx>) -> anyhow::Result<()> {
    Ok(())
}
