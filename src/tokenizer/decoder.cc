#include "tokenizer/decoder.h"

namespace kinfer::tokenizer {
namespace {

// "<0xXX>" -> the byte, or -1.
int ByteTokenValue(std::string_view t) {
  if (t.size() != 6 || t[0] != '<' || t[1] != '0' || t[2] != 'x' || t[5] != '>') return -1;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(t[3]), lo = hex(t[4]);
  if (hi < 0 || lo < 0) return -1;
  return hi * 16 + lo;
}

std::string ReplaceAll(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  if (from.empty()) return std::string(s);
  size_t pos = 0;
  while (true) {
    const size_t hit = s.find(from, pos);
    if (hit == std::string_view::npos) break;
    out.append(s.substr(pos, hit - pos));
    out.append(to);
    pos = hit + from.size();
  }
  out.append(s.substr(pos));
  return out;
}

std::string WordPieceCleanup(std::string s) {
  static const char* const kPairs[][2] = {
      {" .", "."},   {" ?", "?"},     {" !", "!"},     {" ,", ","},
      {" ' ", "'"},  {" n't", "n't"}, {" 'm", "'m"},   {" do not", " don't"},
      {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
  };
  for (const auto& p : kPairs) s = ReplaceAll(s, p[0], p[1]);
  return s;
}

}  // namespace

DecodeStream::DecodeStream(const std::vector<DecoderStep>* steps)
    : steps_(steps), state_(steps->size()) {}

void DecodeStream::Push(std::string_view token, std::string* out) { Feed(0, token, true, out); }

void DecodeStream::Feed(size_t step, std::string_view frag, bool new_token, std::string* out) {
  if (step == steps_->size()) {
    final_.Push(frag, out);
    return;
  }
  const DecoderStep& d = (*steps_)[step];
  StepState& st = state_[step];
  switch (d.kind) {
    case DecoderStep::Kind::kByteLevel: {
      // A token whose characters are all in GPT-2's map stands for those bytes; any other token
      // (an added token such as "<｜end▁of▁sentence｜>") stands for its own UTF-8.
      std::string bytes;
      bytes.reserve(frag.size());
      bool all_mapped = true;
      size_t i = 0;
      while (i < frag.size()) {
        Utf8Char c = DecodeUtf8(frag, i);
        const int b = c.valid ? UnicodeToByte(c.cp) : -1;
        if (b < 0) {
          all_mapped = false;
          break;
        }
        bytes.push_back(static_cast<char>(b));
        i += c.len;
      }
      if (!all_mapped) bytes.assign(frag);
      std::string text;
      st.utf8.Push(bytes, &text);
      if (!text.empty()) {
        Emit(step, text, !st.emitted, out);
        st.emitted = true;
      }
      return;
    }
    case DecoderStep::Kind::kMetaspace: {
      if (new_token) ++st.tokens;
      const bool first = st.tokens == 1 && d.flag;
      Emit(step, ReplaceAll(frag, d.a, first ? "" : " "), new_token, out);
      return;
    }
    case DecoderStep::Kind::kReplace:
      Emit(step, ReplaceAll(frag, d.a, d.b), new_token, out);
      return;
    case DecoderStep::Kind::kByteFallback: {
      const int byte = new_token ? ByteTokenValue(frag) : -1;
      if (byte >= 0) {
        st.bytes.push_back(static_cast<char>(byte));
        return;
      }
      EndToken(step, out);
      Emit(step, frag, new_token, out);
      return;
    }
    case DecoderStep::Kind::kFuse:
      Emit(step, frag, !st.emitted, out);
      st.emitted = true;
      return;
    case DecoderStep::Kind::kStrip: {
      if (new_token) {
        EndToken(step, out);
        st.leading = 0;
        st.leading_done = false;
        Emit(step, "", true, out);
      }
      std::string text;
      size_t i = 0;
      while (i < frag.size()) {
        Utf8Char c = DecodeUtf8(frag, i);
        const std::string_view ch = frag.substr(i, c.len);
        i += c.len;
        if (!st.leading_done && st.leading < d.start && ch == d.a) {
          ++st.leading;
          continue;
        }
        st.leading_done = true;
        if (d.stop > 0 && ch == d.a) {
          st.held.append(ch);
          ++st.held_count;
          continue;
        }
        text.append(st.held);
        st.held.clear();
        st.held_count = 0;
        text.append(ch);
      }
      if (!text.empty()) Emit(step, text, false, out);
      return;
    }
    case DecoderStep::Kind::kWordPiece: {
      std::string text;
      if (new_token) {
        ++st.tokens;
        if (frag.substr(0, d.a.size()) == d.a) {
          frag.remove_prefix(d.a.size());
        } else if (st.tokens > 1) {
          text.push_back(' ');
        }
      }
      text.append(frag);
      Emit(step, d.flag ? WordPieceCleanup(std::move(text)) : text, new_token, out);
      return;
    }
    case DecoderStep::Kind::kJoinSpace: {
      std::string text;
      if (new_token && ++st.tokens > 1) text.push_back(' ');
      text.append(frag);
      Emit(step, text, new_token, out);
      return;
    }
  }
}

// Closes the token that `step` is in the middle of, releasing what it held for it.
void DecodeStream::EndToken(size_t step, std::string* out) {
  const DecoderStep& d = (*steps_)[step];
  StepState& st = state_[step];
  if (d.kind == DecoderStep::Kind::kByteFallback && !st.bytes.empty()) {
    std::string run;
    run.swap(st.bytes);
    if (IsValidUtf8(run)) {
      Emit(step, run, true, out);
    } else {
      for (size_t i = 0; i < run.size(); ++i) Emit(step, "\xEF\xBF\xBD", true, out);
    }
  } else if (d.kind == DecoderStep::Kind::kStrip && !st.held.empty()) {
    // Drop up to `stop` trailing characters; keep the rest.
    const int drop = std::min(st.held_count, d.stop);
    std::string keep = st.held.substr(0, st.held.size() - drop * d.a.size());
    st.held.clear();
    st.held_count = 0;
    if (!keep.empty()) Emit(step, keep, false, out);
  }
}

void DecodeStream::FinishStep(size_t step, std::string* out) {
  const DecoderStep& d = (*steps_)[step];
  StepState& st = state_[step];
  if (d.kind == DecoderStep::Kind::kByteLevel) {
    std::string text;
    st.utf8.Finish(&text);
    if (!text.empty()) {
      Emit(step, text, !st.emitted, out);
      st.emitted = true;
    }
  } else {
    EndToken(step, out);
  }
}

void DecodeStream::Finish(std::string* out) {
  for (size_t i = 0; i < steps_->size(); ++i) FinishStep(i, out);
  final_.Finish(out);
  state_.assign(steps_->size(), StepState());
}

}  // namespace kinfer::tokenizer
