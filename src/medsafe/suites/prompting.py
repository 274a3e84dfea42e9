"""How an MCQ item becomes the prompt a model sees, in its own language.

Kept in one place so loaders and option rotation (circular evaluation) render identically.
"""

from __future__ import annotations

from medsafe.schema import Language, Message

_INSTRUCTIONS: dict[Language, tuple[str, str]] = {
    "en": (
        "Answer the following multiple-choice question. Exactly one option is correct. "
        "End your reply with a line of the form 'Answer: X'.",
        "Answer the following multiple-choice question. One or more options may be correct. "
        "End your reply with a line of the form 'Answer: ACD' listing every correct letter.",
    ),
    "zh": (
        "请回答下面的单项选择题，只有一个选项正确。请在回答最后一行写出“答案：X”。",
        "请回答下面的多项选择题，可能有一个或多个选项正确。请在回答最后一行写出“答案：ACD”，列出所有正确选项的字母。",
    ),
    "ja": (
        "次の選択問題に答えてください。正しい選択肢は一つだけです。最後の行に「答え：X」の形で書いてください。",
        "次の選択問題に答えてください。正しい選択肢は一つ以上あります。最後の行に「答え：ACD」の形で正しい選択肢の記号をすべて書いてください。",
    ),
}


def render_mcq(question: str, options: dict[str, str], language: Language, multi: bool) -> str:
    """The user message for an MCQ: instruction, stem, then one ``X. text`` line per option."""
    instruction = _INSTRUCTIONS[language][1 if multi else 0]
    lines = [instruction, "", question.strip(), ""]
    lines += [f"{letter}. {options[letter].strip()}" for letter in sorted(options)]
    return "\n".join(lines)


def mcq_messages(
    question: str, options: dict[str, str], language: Language, multi: bool
) -> tuple[Message, ...]:
    """The message tuple for an MCQ item."""
    return (Message(role="user", content=render_mcq(question, options, language, multi)),)
