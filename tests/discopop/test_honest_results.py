"""DiscoPOP in real containers: whatever the candidate's process leaves in /out (result.json,
the weights directory, malformed weights the evaluator must load) ends as the candidate's
CandidateFailure with a reason, never as an engine error that would stop the run."""

from __future__ import annotations

import json
import re

import pytest

from engine.domains.discopop.dpbox.protocol import BoxStatus
from engine.search.candidate import Status
from tests.discopop.conftest import failure

pytestmark = [pytest.mark.docker]

# The loss runs in the same process that writes /out/result.json: when the validity tests first
# call it, it writes its own result files and ends the process with exit status 0.
HOSTILE_LOSS = '''import os

def loss(self, policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps):
    {write}
    os._exit(0)
'''
RESULT = 'open("/out/result.json.x", "w").write({text!r}); os.replace("/out/result.json.x", "/out/result.json")'
OK = RESULT.format(text='{"status": "ok"}')

HOSTILE = {
    "result_is_a_list": (RESULT.format(text="[]"), r"result.json is malformed at the top level"),
    "status_rejected_without_reason": (RESULT.format(text=json.dumps({"status": BoxStatus.REJECTED.value})),
                                       r"^validity tests failed$"),
    "unknown_status": (RESULT.format(text='{"status": "great"}'), r"result.json is malformed at status"),
    "nested_deep": (RESULT.format(text="[" * 100_000 + "]" * 100_000), r"nests deeper than"),
    "nan_timings": (RESULT.format(text='{"status": "ok", "timings": {"x": NaN}}'), r"is not valid JSON"),
    "no_weights": (OK, r"^trained weights: "),
    "weights_dir_is_a_symlink": ('os.symlink("/etc", "/out/weights"); ' + OK, r"^trained weights: "),
    "weights_file_is_a_fifo": ('os.mkdir("/out/weights"); os.mkfifo("/out/weights/beta1_seed0.safetensors"); ' + OK,
                               r"^trained weights: .*(not a regular file|missing)"),
    "malformed_safetensors": ('os.mkdir("/out/weights"); open("/out/weights/beta1_seed0.safetensors", "wb")'
                              '.write(b"\\xff" * 64); ' + OK, r"could not be evaluated"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_training_output_is_the_candidates_failure(fast_domain, dp_run, case):
    write, expected = HOSTILE[case]
    caught = failure(fast_domain, dp_run, HOSTILE_LOSS.format(write=write))
    assert caught.status is Status.FAILED
    assert re.search(expected, caught.reason), caught.reason
    assert "\n" not in caught.reason
