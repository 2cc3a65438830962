"""Chat emoji, and a text with some of them added: the heads train on a share of inputs so
decorated (semantic_train.augmented) and the eval measures held-out inputs decorated the same way
(tools.moderation.eval.emoji_rows). Emoji are a closed vocabulary, like punctuation, so train and
eval share it; no training row is an emoji alone, so the eval's emoji-alone row is never trained on."""
from __future__ import annotations

import hashlib

# Emoji people put in chat, most used first (a public popularity ranking), for the emoji rows: the
# labelled data held almost none until session 36, and an emoji alone could flag a message (💦: sexual).
CHAT_EMOJI = tuple("""😂 ❤️ 🤣 👍 😭 🙏 😘 🥰 😍 😊 🎉 😁 💕 🥺 😅 🔥 ☺️ 🤦 ♥️ 🤷 🙄 😆 🤗 😉 🎂 🤔 👏 🙂 😳 🥳 😎 👌 💜 😔 💪 ✨
    💖 👀 😋 😏 😢 👉 💗 😩 💯 🌹 💞 🎈 💙 😃 😡 💐 😜 🙈 🤞 😄 🤤 🙌 🤪 ❣️ 😀 💋 💀 👇 💔 😌 💓 🤩 🙃 😬 😱 😴
    🤭 😐 🌞 😒 😇 🌸 😈 🎶 ✌️ 🎊 🥵 😞 💚 ☀️ 🖤 💰 😚 👑 🎁 💥 🙋 ☹️ 😑 🥴 👈 💩 ✅ 👋 🤮 😤 🤢 🌟 ❗ 😥 🌈 💛
    😝 😫 😲 🖕 ‼️ 🔴 🌻 🤯 💃 👊 🤬 🏃 😕 👁️ ⚡ ☕ 🍀 💦 ⭐ 🦋 🤨 🌺 😹 🤘 🌷 💝 💤 🤝 🐰 😓 💘 🍻 😟 😣 🧐 😠 🤠
    😻 🌙 😛 🤙 🙊""".split())


def with_emoji(text: str, salt: str) -> str:
    """`text` with 1-3 chat emoji before it, after it or run on, chosen by the hash of salt + text."""
    h = int(hashlib.sha256((salt + text).encode()).hexdigest()[:12], 16)
    added = "".join(CHAT_EMOJI[(h >> (8 + 8 * i)) % len(CHAT_EMOJI)] for i in range((1, 1, 2, 3)[h % 4]))
    return (f"{text} {added}", f"{added} {text}", f"{text}{added}")[(h >> 4) % 3]
