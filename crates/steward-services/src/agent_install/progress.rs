//! [`Steps`]: the steps of an install or uninstall so far, kept for the result and, when the
//! caller asked to follow along, also sent on a channel as each one ends.
use std::ops::Deref;

use steward_proto::AgentInstallStep;
use tokio::sync::mpsc;

/// Where a flow reports its steps as they end. Unbounded, so a slow reader never holds up an
/// install; the receiver going away does not stop it either.
pub type Progress = mpsc::UnboundedSender<AgentInstallStep>;

/// The steps of an install or uninstall so far, sent on to a progress channel if there is one.
#[derive(Debug, Default)]
pub struct Steps {
    done: Vec<AgentInstallStep>,
    live: Option<Progress>,
}

impl Steps {
    /// Steps that are also sent to `progress`, if given, as they are pushed.
    pub fn reporting_to(progress: Option<Progress>) -> Self {
        Self {
            done: Vec::new(),
            live: progress,
        }
    }

    /// Steps that are also sent to the returned receiver as they are pushed.
    pub fn live() -> (Self, mpsc::UnboundedReceiver<AgentInstallStep>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self::reporting_to(Some(tx)), rx)
    }

    pub fn push(&mut self, step: AgentInstallStep) {
        if let Some(tx) = &self.live {
            // Nobody listening any more (the client went): the install goes on regardless.
            let _ = tx.send(step.clone());
        }
        self.done.push(step);
    }

    pub fn extend(&mut self, steps: impl IntoIterator<Item = AgentInstallStep>) {
        for s in steps {
            self.push(s);
        }
    }
}

impl Deref for Steps {
    type Target = [AgentInstallStep];

    fn deref(&self) -> &[AgentInstallStep] {
        &self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent_install::step;

    #[tokio::test]
    async fn steps_go_to_the_stream_and_stay_for_the_answer() {
        let (mut steps, mut rx) = Steps::live();
        steps.push(step("connect", true, "127.0.0.2:22"));
        steps.extend([step("probe", true, "x86_64")]);
        assert_eq!(steps.len(), 2);
        assert_eq!(rx.recv().await.expect("step").name, "connect");
        assert_eq!(rx.recv().await.expect("step").name, "probe");
        drop(steps);
        assert!(rx.recv().await.is_none());
        // Without a stream, steps are only kept.
        let mut quiet = Steps::default();
        quiet.push(step("connect", false, "refused"));
        assert!(!quiet[0].ok);
    }
}
