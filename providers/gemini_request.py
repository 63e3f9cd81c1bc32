"""OpenAI chat and embedding requests → Gemini `generateContent` / `batchEmbedContents` bodies."""

from __future__ import annotations

import mimetypes
from typing import Any

import msgspec

from providers.errors import UpstreamFailure
from providers.gemini_schema import gemini_schema

_decode = msgspec.json.Decoder().decode

_GENERATION_FIELDS = {
    "temperature": "temperature",
    "top_p": "topP",
    "n": "candidateCount",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}
_TOOL_MODES = {"none": "NONE", "auto": "AUTO", "required": "ANY"}
_AUDIO_MIME = {"wav": "audio/wav", "mp3": "audio/mp3"}
PASSED_THROUGH = ("mock",)
"""Body fields forwarded as they are: the mock provider's per-request control."""


class UnsupportedRequest(UpstreamFailure):
    """A request Gemini cannot express; the client gets a 400 naming the field."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(
            "http", message, status=400, error_type="invalid_request_error", param=param
        )


def model_path(provider_model: str) -> str:
    """`gemini-2.0-flash` → `models/gemini-2.0-flash`; `tunedModels/x` stays as it is."""
    return provider_model if "/" in provider_model else f"models/{provider_model}"


def chat_body(payload: dict[str, Any]) -> dict[str, Any]:
    """The `GenerateContentRequest` for an OpenAI chat request."""
    system, contents = _contents(payload.get("messages"))
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    tools = payload.get("tools")
    if tools:
        body["tools"] = [{"functionDeclarations": _declarations(tools)}]
    tool_choice = payload.get("tool_choice")
    if tool_choice is not None:
        body["toolConfig"] = {"functionCallingConfig": _calling_config(tool_choice)}
    config = _generation_config(payload)
    if config:
        body["generationConfig"] = config
    for name in PASSED_THROUGH:
        if name in payload:
            body[name] = payload[name]
    return body


def embeddings_body(payload: dict[str, Any], provider_model: str) -> dict[str, Any]:
    """One `batchEmbedContents` request for every input."""
    raw = payload.get("input")
    inputs = [raw] if isinstance(raw, str) else raw
    if not isinstance(inputs, list) or not inputs:
        raise UnsupportedRequest("'input' must be a string or a non-empty array", "input")
    if not all(isinstance(item, str) for item in inputs):
        raise UnsupportedRequest(
            "Gemini embeddings take text only, not token arrays", param="input"
        )
    model = model_path(provider_model)
    dimensions = payload.get("dimensions")
    requests = []
    for text in inputs:
        request: dict[str, Any] = {"model": model, "content": {"parts": [{"text": text}]}}
        if dimensions is not None:
            request["outputDimensionality"] = dimensions
        requests.append(request)
    body: dict[str, Any] = {"requests": requests}
    for name in PASSED_THROUGH:
        if name in payload:
            body[name] = payload[name]
    return body


# --- messages -------------------------------------------------------------------------------


def _contents(messages: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if not isinstance(messages, list) or not messages:
        raise UnsupportedRequest("'messages' must be a non-empty array", "messages")
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise UnsupportedRequest("each message must be an object", f"messages[{index}]")
        role = message.get("role")
        where = f"messages[{index}]"
        if role in ("system", "developer"):
            system.extend(_text_parts(message.get("content"), where))
            continue
        if role == "user":
            parts = _user_parts(message.get("content"), where)
            gemini_role = "user"
        elif role == "assistant":
            parts = _assistant_parts(message, where, call_names)
            gemini_role = "model"
        elif role in ("tool", "function"):
            parts = [_function_response(message, where, call_names)]
            gemini_role = "user"
        else:
            raise UnsupportedRequest(f"unsupported message role {role!r}", f"{where}.role")
        if not parts:
            continue
        if contents and contents[-1]["role"] == gemini_role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": gemini_role, "parts": parts})
    if not contents:
        raise UnsupportedRequest("Gemini needs at least one user or assistant message", "messages")
    return system, contents


def _text_parts(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"text": content}]
    if isinstance(content, list):
        texts = []
        for index, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("text"), str):
                raise UnsupportedRequest(
                    "only text parts are allowed here", f"{where}.content[{index}]"
                )
            texts.append({"text": part["text"]})
        return texts
    raise UnsupportedRequest("content must be a string or an array of parts", f"{where}.content")


def _user_parts(content: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        return _text_parts(content, where)
    parts = []
    for index, part in enumerate(content):
        place = f"{where}.content[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append({"text": part["text"]})
        elif kind == "image_url":
            parts.append(_image_part(part.get("image_url"), place))
        elif kind == "input_audio":
            parts.append(_audio_part(part.get("input_audio"), place))
        else:
            raise UnsupportedRequest(f"unsupported content part type {kind!r}", place)
    return parts


def _image_part(image: Any, where: str) -> dict[str, Any]:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise UnsupportedRequest("an image_url part needs an 'image_url.url'", where)
    if url.startswith("data:"):
        header, separator, data = url[5:].partition(",")
        mime, _, encoding = header.partition(";")
        if not separator or encoding != "base64" or not mime:
            raise UnsupportedRequest("an image data URL must be base64 with a MIME type", where)
        return {"inlineData": {"mimeType": mime, "data": data}}
    mime = mimetypes.guess_type(url.split("?", 1)[0])[0] or "image/jpeg"
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _audio_part(audio: Any, where: str) -> dict[str, Any]:
    if not isinstance(audio, dict) or not isinstance(audio.get("data"), str):
        raise UnsupportedRequest("an input_audio part needs 'input_audio.data'", where)
    mime = _AUDIO_MIME.get(str(audio.get("format")), "audio/wav")
    return {"inlineData": {"mimeType": mime, "data": audio["data"]}}


def _assistant_parts(
    message: dict[str, Any], where: str, call_names: dict[str, str]
) -> list[dict[str, Any]]:
    parts = _text_parts(message.get("content"), where)
    tool_calls = message.get("tool_calls") or []
    if not isinstance(tool_calls, list):
        raise UnsupportedRequest("'tool_calls' must be an array", f"{where}.tool_calls")
    for index, call in enumerate(tool_calls):
        place = f"{where}.tool_calls[{index}]"
        function = call.get("function") if isinstance(call, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(function, dict) or not isinstance(name, str) or not name:
            raise UnsupportedRequest("a tool call needs 'function.name'", place)
        arguments = _json_arguments(function.get("arguments"), f"{place}.function.arguments")
        if isinstance(call.get("id"), str):
            call_names[call["id"]] = name
        parts.append({"functionCall": {"name": name, "args": arguments}})
    return parts


def _json_arguments(raw: Any, where: str) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):
        return raw
    try:
        value = _decode(raw) if isinstance(raw, str) else None
    except (msgspec.DecodeError, RecursionError):  # nested deeper than JSON decoding goes
        value = None
    if not isinstance(value, dict):
        raise UnsupportedRequest("tool call arguments must be a JSON object", where)
    return value


def _function_response(
    message: dict[str, Any], where: str, call_names: dict[str, str]
) -> dict[str, Any]:
    name = message.get("name")
    call_id = message.get("tool_call_id")
    if isinstance(call_id, str) and call_id in call_names:
        name = call_names[call_id]
    if not isinstance(name, str) or not name:
        raise UnsupportedRequest(
            "a tool message must answer a tool call of an earlier assistant message",
            f"{where}.tool_call_id",
        )
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    response: Any = content
    if isinstance(content, str):
        try:
            response = _decode(content)
        except (msgspec.DecodeError, RecursionError):
            response = content
    if not isinstance(response, dict):
        response = {"output": response}
    return {"functionResponse": {"name": name, "response": response}}


# --- tools and generation config -----------------------------------------------------------


def _declarations(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise UnsupportedRequest("'tools' must be an array", "tools")
    declarations = []
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            raise UnsupportedRequest("only function tools are supported", f"tools[{index}]")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(function, dict) or not isinstance(name, str) or not name:
            raise UnsupportedRequest(
                "each tool needs a 'function' with a 'name'", f"tools[{index}].function"
            )
        declaration: dict[str, Any] = {"name": name}
        if isinstance(function.get("description"), str):
            declaration["description"] = function["description"]
        parameters = gemini_schema(function.get("parameters"))
        if parameters.get("properties"):
            declaration["parameters"] = parameters
        declarations.append(declaration)
    return declarations


def _calling_config(choice: Any) -> dict[str, Any]:
    if isinstance(choice, str) and choice in _TOOL_MODES:
        return {"mode": _TOOL_MODES[choice]}
    if isinstance(choice, dict):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str) and name:
            return {"mode": "ANY", "allowedFunctionNames": [name]}
    raise UnsupportedRequest(
        "'tool_choice' must be 'none', 'auto', 'required' or a function object", "tool_choice"
    )


def _generation_config(payload: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for openai_name, gemini_name in _GENERATION_FIELDS.items():
        if payload.get(openai_name) is not None:
            config[gemini_name] = payload[openai_name]
    max_tokens = payload.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = payload.get("max_tokens")
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    stop = payload.get("stop")
    if isinstance(stop, str):
        config["stopSequences"] = [stop]
    elif isinstance(stop, list) and stop:
        config["stopSequences"] = stop
    response_format = payload.get("response_format")
    if isinstance(response_format, dict):
        kind = response_format.get("type")
        if kind == "json_object":
            config["responseMimeType"] = "application/json"
        elif kind == "json_schema":
            config["responseMimeType"] = "application/json"
            spec = response_format.get("json_schema")
            schema = spec.get("schema") if isinstance(spec, dict) else None
            if isinstance(schema, dict):
                config["responseSchema"] = gemini_schema(schema)
    return config
