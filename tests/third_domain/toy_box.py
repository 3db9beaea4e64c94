"""Inside the toy's candidate container: `python3 -m toy_box <delay_s> <xs json>` imports the
candidate's f from candidate.py beside it and writes /out/values.json {"values": [f(x), ...]}."""

import json
import sys
import time


def main(delay_s: str, xs: str) -> None:
    time.sleep(float(delay_s))
    import candidate  # noqa: PLC0415 - only after the delay, as a slow evaluation would

    values = [candidate.f(x) for x in json.loads(xs)]
    with open("/out/values.json", "w") as handle:
        json.dump({"values": values}, handle)


if __name__ == "__main__":
    main(*sys.argv[1:3])
