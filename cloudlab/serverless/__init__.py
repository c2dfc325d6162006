"""Serverless toolkit: real Lambda functions in the AWS Lambda Runtime Interface Emulator, and the parts of
the Lambda service the lab stands in for. Serves lesson 12.

===========  ==================================================================================
``runtime``  one execution environment: ``aws-lambda-rie`` + ``python -m awslambdaric`` on 127.0.0.1,
             invoked through the emulator's endpoint; cold/warm, INIT and REPORT read from its log
``pool``     a function as the service runs it: environments on demand, reserved concurrency and
             throttling (429), asynchronous invokes with retries and an on-failure destination
``apigw``    API Gateway's proxy events (payload 2.0 and 1.0) and its reading of the answer; an HTTP API
             on 127.0.0.1 that routes requests to functions
``esm``      the SQS event source mapping: batches, ReportBatchItemFailures, visibility timeout
``image``    the same function as a container image built from the lab's base image, on the lab's engine
===========  ==================================================================================

What is real: the emulator and the runtime interface client AWS publishes (the runtime API, the handler's
event and context, INIT, timeouts, errors), SQS (LocalStack) and DynamoDB (moto). What the lab stands in
for, because only the Lambda service does it: keeping and reusing environments, concurrency limits, the
asynchronous event queue, the SQS poller, API Gateway. Each module says what it follows.
"""

from .apigw import HttpApi, HttpResponse, proxy_event, to_http  # noqa: F401
from .esm import EventSourceMapping, failed_ids, sqs_event  # noqa: F401
from .pool import AsyncRecord, Function, Throttled  # noqa: F401
from .runtime import INVOKE_PATH, Environment, FunctionSpec, Invocation, parse_report, rie  # noqa: F401
