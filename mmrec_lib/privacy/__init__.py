"""Privacy for recommenders: DP-SGD by hand, its epsilon, FedAvg, membership inference, on-device scoring.

Four tools, each small enough to read in one sitting:

* :class:`DPTwoTower` is the model the privacy target is measured on: a two-tower
  whose item tower projects the clips' **public** content vectors
  (:func:`public_content_vectors`) and whose user tower averages the user's
  history on the device, trained with **user-level** DP-SGD by hand (per-user
  gradients, clipping, Gaussian noise). Its only trained parameters are two small
  shared projections and the item biases, so the noise is spread over about a
  thousand numbers instead of every user's and item's embedding row. The item
  biases can instead be released once as a noised histogram of item counts
  (``bias_noise_multiplier``), a second Gaussian mechanism composed with DP-SGD by
  the accountant (:func:`epsilon_for` with ``release_noise``).
* :class:`DPMatrixFactorization` trains BPR matrix factorisation with DP-SGD written
  by hand in TensorFlow (per-example gradients, clipping to L2 norm ``clip``, Gaussian
  noise of standard deviation ``noise_multiplier * clip``, averaging), and
  :func:`epsilon_for` / :func:`noise_for_epsilon` turn its settings into a privacy
  budget with the RDP accountant of ``dp-accounting``.
* :func:`federated_fit` simulates federated averaging: user vectors never leave the
  "device", the server only sees clipped (and optionally noised) item-side updates
  of a sampled cohort of users per round.
* :func:`membership_inference_auc` measures leakage with the score-threshold attack
  of Yeom et al. (2018): how well a model's scores separate training interactions
  from held-out ones (AUC 0.5 = no leakage). :func:`user_membership_attack` is the
  stronger, calibrated attack at the unit of user-level DP (was this *user* in
  training?): reference models trained with and without each user calibrate the
  user's log-likelihood under the target (offline calibration, Watson et al. 2022,
  and LiRA, Carlini et al. 2022), reported as AUC and TPR at 1% FPR.
* :class:`ItemIndex` and :func:`user_vector_from_history` split scoring into a
  server-side item index and a user vector computed on the client from the user's
  own history, so the server never needs a user id.

What the guarantees cover
-------------------------
:class:`DPTwoTower` clips each sampled **user's** whole gradient, so its epsilon
is **user-level** (and therefore also holds for a single interaction).
:class:`DPMatrixFactorization` is **example-level**: one example is one interaction (user, item), and
neighbouring datasets differ in one interaction. A user with 50 interactions is
protected with roughly ``50 * epsilon`` (group privacy), not ``epsilon``. User-level
privacy needs every user's whole contribution clipped together; that is what
:func:`federated_fit` does (one client = one user, its whole update clipped), so its
``epsilon_for(noise, clients_per_round / num_users, rounds, delta)`` is **user-level**,
but only for the item-side parameters that leave the device.

TensorFlow is imported lazily, so ``import mmrec_lib.privacy`` stays light.
"""

from mmrec_lib.privacy.accounting import epsilon_for, noise_for_epsilon
from mmrec_lib.privacy.dp_sgd import (
    DPMatrixFactorization,
    bpr_per_example_gradients,
    clip_and_noise,
)
from mmrec_lib.privacy.dp_two_tower import DPTwoTower, public_content_vectors
from mmrec_lib.privacy.federated import FederatedMatrixFactorization, federated_fit
from mmrec_lib.privacy.membership import (
    MembershipAttack,
    attack_from_signals,
    attack_metrics,
    calibrated_membership_scores,
    membership_inference_auc,
    user_log_likelihood,
    user_membership_attack,
)
from mmrec_lib.privacy.on_device import ItemIndex, user_vector_from_history

__all__ = [
    "clip_and_noise",
    "bpr_per_example_gradients",
    "epsilon_for",
    "noise_for_epsilon",
    "DPMatrixFactorization",
    "DPTwoTower",
    "public_content_vectors",
    "FederatedMatrixFactorization",
    "federated_fit",
    "user_vector_from_history",
    "ItemIndex",
    "membership_inference_auc",
    "user_log_likelihood",
    "calibrated_membership_scores",
    "attack_metrics",
    "MembershipAttack",
    "user_membership_attack",
    "attack_from_signals",
]
