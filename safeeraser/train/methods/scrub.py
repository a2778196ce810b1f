"""SCRUB (Kurmanji et al. 2023, "Towards Unbounded Machine Unlearning"), as the paper and its code run
it: a student (the model with its adapter) and a teacher (the adapter-disabled model).
- max epochs: the student's next-token distributions on the forget answers pushed away from the
  teacher's: -KL_T(teacher || student);
- min epochs: kept with the teacher on the retain answers, alpha KL_T(teacher || student), and their
  NLL, gamma CE (the terms' weights: loss_weights.retain_kl = alpha, loss_weights.retain = gamma).
KL_T compares the softmaxes of logits / T and is scaled by T^2. The paper runs, per round, one max
pass over the forget set then one min pass over the retain set, max passes only in the first `msteps`
rounds; here a pass is an epoch: epochs 0, 2, .., 2 msteps - 2 are max epochs and every other epoch a
min epoch (so num_epochs = the paper's rounds + msteps). Defaults are the authors' code's: T = 4,
alpha = 0.001, gamma = 0.99, msteps = 2.
Where the student still equals the teacher (LoRA's B starts at zero) the KL has no gradient: the
first max epoch moves the model only as far as weight decay and a trained projector let it differ
from the teacher; that is the paper's order, kept. The PD term, when added, is on every epoch."""
from safeeraser.train.methods.base import Method, Term

MAX, MIN = "max", "min"


def phase(epoch: int, args: dict) -> str:
    return MAX if epoch < 2 * args["msteps"] and epoch % 2 == 0 else MIN


METHOD = Method("scrub", (Term("forget_kl", "forget", "kl", -1.0, phase=MAX),
                          Term("retain_kl", "retain", "kl", 0.001, phase=MIN),
                          Term("retain", "retain", "nll", 0.99, phase=MIN)),
                pd_weight=1.0, args={"temperature": 4.0, "msteps": 2},
                arg_bounds={"temperature": "> 0", "msteps": "int >= 0"}, phase_of_epoch=phase)
