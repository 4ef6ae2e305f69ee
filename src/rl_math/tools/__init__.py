"""The `rl-math` command's tools around a run (cli.py parses the command line).

    curves.py       `rl-math plot`: training curves and health alarms from trainer_state.json
    samples.py      `rl-math samples`: the completions a run logged, as a table
    memory_plan.py  `rl-math plan`: will a config fit in GPU memory
"""
