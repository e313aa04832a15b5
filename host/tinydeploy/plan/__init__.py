"""The offline memory plan (a build step, TF-free): where every activation tensor lives in the tensor arena's head.

TFLM plans the head itself at AllocateTensors() with a greedy planner; the pinned library also reads a plan from the
model (metadata ``OfflineMemoryAllocation``: int32 words version 0, subgraph 0, the number of tensors, then one
offset per tensor, -1 for those it should plan itself). tinydeploy computes that plan at build time:

- ``lifetimes`` (tinydeploy/lifetimes.py, shared with analyze): each non-constant tensor's bytes (rounded up to TFLM's 16-byte buffer alignment) and the operators
  it is live over, as TFLM counts them (graph inputs from the start, graph outputs to the end);
- ``lower_bound``: the largest sum of live bytes at any operator, which no plan can beat;
- ``plan``: exact where the graph is a chain (at most two tensors live at once: alternate ends of the arena), else the
  best of several orderings and seeded shuffles placed first-fit, checked (no two tensors live at once share a byte);
- the input kept (``plan(..., keep_input=True)``): the model input given a place no other tensor ever takes, and
  listed as a graph output too (``with_plan``) so that TFLM's own planning (kernels' scratch buffers) also keeps off
  it: the firmware then loads the input straight into the input tensor and needs no copy of it;
- ``fold_shapes`` (fold.py), before the plan: a RESHAPE whose shape SHAPE -> STRIDED_SLICE -> PACK computes at run
  time (a Keras Reshape converted with an unknown batch size) given its constant shape, the chain's ops and tensors
  dropped: fewer nodes and tensors for the interpreter to keep in the arena's tail;
- ``with_plan``: the model's bytes with the plan in its metadata (replacing an earlier plan);
- ``as_deployed``: the model `build` deploys with its defaults, which `analyze` and the study judge;
- ``head_with_scratch``: the head once TFLM has put the kernels' scratch buffers into the gaps of the plan (exact: the
  build sizes the arena from it), and ``planning_bytes``: the free space TFLM plans in, which the arena must hold.
"""

from ..lifetimes import ALIGN, Buffer, head_with_scratch, lifetimes, live_bytes, lower_bound, planning_bytes
from .fold import Folded, fold_shapes
from .memory import (MEMORY_PLANS, Deployed, MemoryPlan, PlanError, as_deployed, check, deployed, place, plan,
                     plan_memory, planned_offsets, with_plan)

__all__ = ["ALIGN", "MEMORY_PLANS", "Buffer", "Deployed", "Folded", "fold_shapes", "MemoryPlan", "PlanError", "check", "deployed",
           "head_with_scratch", "lifetimes", "live_bytes", "lower_bound", "place", "plan", "plan_memory",
           "planned_offsets", "planning_bytes", "with_plan", "as_deployed"]
