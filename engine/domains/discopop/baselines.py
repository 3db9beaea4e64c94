"""Hand-written losses that seed the archive, each written from its paper's definition.

Notation: rho = (log pi(y_w) - log pi_ref(y_w)) - (log pi(y_l) - log pi_ref(y_l)), the
policy's log-ratio margin of chosen over rejected. All use the method convention
(`self.beta`), the one the proposal prompt asks for.
"""

from __future__ import annotations

from engine.search.candidate import Proposal

DPO = '''def dpo_sigmoid_loss(self, policy_chosen_logps, policy_rejected_logps,
                     reference_chosen_logps, reference_rejected_logps):
    # Rafailov et al. 2023: -log sigmoid(beta * rho)
    rho = (policy_chosen_logps - reference_chosen_logps) - (policy_rejected_logps - reference_rejected_logps)
    return -F.logsigmoid(self.beta * rho)
'''

HINGE = '''def slic_hinge_loss(self, policy_chosen_logps, policy_rejected_logps,
                    reference_chosen_logps, reference_rejected_logps):
    # SLiC (Zhao et al. 2023), calibration hinge on the log-ratio margin: max(0, 1 - beta * rho)
    rho = (policy_chosen_logps - reference_chosen_logps) - (policy_rejected_logps - reference_rejected_logps)
    return torch.relu(1.0 - self.beta * rho)
'''

IPO = '''def ipo_loss(self, policy_chosen_logps, policy_rejected_logps,
             reference_chosen_logps, reference_rejected_logps):
    # Azar et al. 2023: regress the margin onto 1 / (2 beta) instead of pushing it to infinity
    rho = (policy_chosen_logps - reference_chosen_logps) - (policy_rejected_logps - reference_rejected_logps)
    return (rho - 1.0 / (2.0 * self.beta)) ** 2
'''

KTO_PAIR = '''def kto_pair_loss(self, policy_chosen_logps, policy_rejected_logps,
                  reference_chosen_logps, reference_rejected_logps):
    # KTO (Ethayarajh et al. 2024) on pairs: each response is judged against a KL reference
    # point; the batch-mean log-ratio (clamped at 0, no gradient) estimates it.
    chosen_ratio = policy_chosen_logps - reference_chosen_logps
    rejected_ratio = policy_rejected_logps - reference_rejected_logps
    reference_point = ((chosen_ratio + rejected_ratio) / 2).mean().clamp(min=0).detach()
    chosen_loss = 1 - torch.sigmoid(self.beta * (chosen_ratio - reference_point))
    rejected_loss = 1 - torch.sigmoid(self.beta * (reference_point - rejected_ratio))
    return chosen_loss + rejected_loss
'''

# Not a seed of the archive: DiscoPOP's discovered loss, kept to report where it lands.
LRML = '''def log_ratio_modulated_loss(self, policy_chosen_logps, policy_rejected_logps,
                             reference_chosen_logps, reference_rejected_logps):
    # DiscoPOP (Chris Lu et al. 2024): blend of logistic and exponential losses, weighted by
    # sigmoid(beta * rho / tau) with tau = 0.05
    tau = 0.05
    logits = self.beta * ((policy_chosen_logps - reference_chosen_logps) - (policy_rejected_logps - reference_rejected_logps))
    weight = torch.sigmoid(logits / tau)
    logistic = -F.logsigmoid(logits)
    exponential = torch.exp(-logits)
    return logistic * (1 - weight) + exponential * weight
'''

# Deliberately broken losses for the sanity checks (trained without validity tests).
ZERO = '''def zero_loss(self, policy_chosen_logps, policy_rejected_logps,
              reference_chosen_logps, reference_rejected_logps):
    return 0.0 * (policy_chosen_logps - policy_rejected_logps)
'''

FLIPPED_DPO = '''def flipped_dpo_loss(self, policy_chosen_logps, policy_rejected_logps,
                     reference_chosen_logps, reference_rejected_logps):
    rho = (policy_chosen_logps - reference_chosen_logps) - (policy_rejected_logps - reference_rejected_logps)
    return -F.logsigmoid(-self.beta * rho)
'''


def baselines() -> list[Proposal]:
    return [
        Proposal("DPO (sigmoid)", "Logistic loss on the beta-scaled log-ratio margin (Rafailov et al.).", DPO),
        Proposal("SLiC hinge", "Hinge on the beta-scaled margin: no gradient once the margin exceeds 1/beta.", HINGE),
        Proposal("IPO", "Squared loss pulling the margin to 1/(2 beta): bounded, resists overfitting.", IPO),
        Proposal("KTO pair", "Prospect-theory style: each response judged against a batch KL reference point.", KTO_PAIR),
    ]
