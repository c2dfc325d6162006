"""Lesson 12's first function: what runs once per execution environment (INIT) and what runs per invoke."""

import os
import time

STARTED = time.time()  # module-level code runs once, in INIT, when a new environment starts
invocations = 0  # lives as long as the environment: warm invokes see it grow


def handler(event, context):
    global invocations
    invocations += 1
    if event.get("sleep"):
        time.sleep(float(event["sleep"]))
    if event.get("fail"):
        raise ValueError(event["fail"])
    print(f"handling invocation {invocations} in process {os.getpid()}")  # goes to the function's log
    return {
        "pid": os.getpid(),
        "invocations_in_this_environment": invocations,
        "environment_age_s": round(time.time() - STARTED, 3),
        "function_name": context.function_name,
        "memory_limit_in_mb": int(context.memory_limit_in_mb),
        "remaining_time_in_millis": context.get_remaining_time_in_millis(),
        "request_id": context.aws_request_id,
    }
