"""What anybatch does to each aiobotocore client it makes: :func:`remember_user_agent`.

The SQS clients (:mod:`anybatch.sqs._client`) and the idempotency store's DynamoDB clients
(:mod:`anybatch.idempotency._dynamodb`) are made in different places; what a client costs
per call is decided here, once, for both.
"""

from __future__ import annotations

# botocore ships no type information: its values meet typed code here.
# pyright: reportMissingTypeStubs=false, reportUnknownMemberType=false
# pyright: reportUnknownVariableType=false, reportUnknownArgumentType=false

__all__ = ["remember_user_agent"]

#: The most User-Agent strings a client keeps: one per set of request features seen (a client's
#: calls share a few); a client past it builds the rest as botocore does.
_USER_AGENTS_KEPT = 16


def remember_user_agent(client: object) -> bool:
    """Make *client* build its ``User-Agent`` header once per set of features, not per call.

    botocore builds the header twice for every call (when it converts the call into a
    request, and again just before signing it), sanitizing each component character by
    character: about 45 µs each time, a fifth of a busy SQS worker's instructions
    (``bench/worker_instructions.py``). The string depends only on the client (its session,
    config and the features registered when it was made) and on the features the call
    registers in botocore's request context, so it is kept per set of those features: the
    header botocore builds for that set (its features in the order botocore first wrote
    them). Returns whether the client was changed. A botocore that builds the header some
    other way (no request context, another builder, a context that holds more than
    features) is left to build it as it does.
    """
    import dataclasses

    try:
        from botocore.context import ClientContext, get_context
        from botocore.useragent import UserAgentString
    except ImportError:  # a botocore from before its request context
        return False
    creator = getattr(client, "_user_agent_creator", None)
    if creator is None or type(creator) is not UserAgentString:  # a subclass may read more
        return False
    if [field.name for field in dataclasses.fields(ClientContext)] != ["features"]:
        return False
    build = creator.to_string
    made: dict[frozenset[str], str] = {}

    def to_string() -> str:
        context = get_context()
        key = frozenset(context.features) if context is not None else frozenset()
        text = made.get(key)
        if text is None:
            text = build()
            if len(made) < _USER_AGENTS_KEPT:
                made[key] = text
        return text

    creator.to_string = to_string
    return True
