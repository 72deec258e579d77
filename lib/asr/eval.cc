#include "asr/eval.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "asr/audio.h"
#include "asr/stream.h"

namespace asrc::asr {
namespace {

using Clock = std::chrono::steady_clock;

// A ModeReport's summed totals by their JSON key: written by ToJson, read back and checked by
// ModeFromJson, added up by MergeShards.
const std::pair<const char*, int64_t ModeReport::*> kCounts[] = {
    {"words", &ModeReport::words},
    {"substitutions", &ModeReport::substitutions},
    {"deletions", &ModeReport::deletions},
    {"insertions", &ModeReport::insertions},
    {"chars", &ModeReport::chars},
    {"char_errors", &ModeReport::char_errors},
    {"utterances", &ModeReport::utterances},
    {"failed_utterances", &ModeReport::failed_utterances}};
const std::pair<const char*, double ModeReport::*> kSeconds[] = {
    {"audio_seconds", &ModeReport::audio_seconds},
    {"compute_seconds", &ModeReport::compute_seconds},
    {"cpu_seconds", &ModeReport::cpu_seconds}};

bool IsAbsolute(const std::string& p) { return !p.empty() && p[0] == '/'; }

std::string DirName(const std::string& p) {
  size_t s = p.find_last_of('/');
  if (s == std::string::npos) return ".";
  if (s == 0) return "/";
  return p.substr(0, s);
}

std::string FormatDuration(double s) {
  if (!(s >= 0) || s > 1e7) return "--:--";
  int total = static_cast<int>(s + 0.5);
  char buf[32];
  if (total >= 3600)
    std::snprintf(buf, sizeof buf, "%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60);
  else
    std::snprintf(buf, sizeof buf, "%d:%02d", total / 60, total % 60);
  return buf;
}

class ProgressBar {
 public:
  ProgressBar(bool enabled, int64_t total) : on_(enabled && isatty(2) && total > 0), total_(total) {
    t0_ = Clock::now();
  }
  void Update(int64_t done, int64_t failed) {
    if (!on_) return;
    double el = std::chrono::duration<double>(Clock::now() - t0_).count();
    double eta = done > 0 ? el / done * (total_ - done) : -1;
    const int width = 30;
    int fill = static_cast<int>(width * done / total_);
    std::string bar(fill, '=');
    if (fill < width) bar += '>' + std::string(width - fill - 1, ' ');
    std::fprintf(stderr, "\r[%s] %lld/%lld  failed %lld  elapsed %s  ETA %s ", bar.c_str(),
                 static_cast<long long>(done), static_cast<long long>(total_),
                 static_cast<long long>(failed), FormatDuration(el).c_str(),
                 done > 0 ? FormatDuration(eta).c_str() : "--:--");
    std::fflush(stderr);
  }
  void Done() {
    if (on_) std::fprintf(stderr, "\n");
  }

 private:
  bool on_;
  int64_t total_;
  Clock::time_point t0_;
};

void AddScore(ModeReport& r, UtteranceResult u, const EvalOptions& o, double audio_s,
              double compute_ms, double cpu_ms) {
  std::string ref = NormalizeText(u.reference, o.normalize);
  std::string hyp = NormalizeText(u.hypothesis, o.normalize);
  std::vector<AlignedPair> al;
  ErrorCounts w = Align(SplitWords(ref), SplitWords(hyp), o.alignments ? &al : nullptr);
  ErrorCounts c = Align(SplitChars(ref), SplitChars(hyp));
  if (o.alignments) u.alignment = FormatAlignment(al);
  u.words = w;
  u.chars = c;
  r.words += w.ref_len;
  r.substitutions += w.substitutions;
  r.deletions += w.deletions;
  r.insertions += w.insertions;
  r.chars += c.ref_len;
  r.char_errors += c.errors();
  r.audio_seconds += audio_s;
  r.compute_seconds += compute_ms / 1000.0;
  r.cpu_seconds += cpu_ms / 1000.0;
  r.utterances += 1;
  r.per_utterance.push_back(std::move(u));
}

void AddFailure(ModeReport& r, UtteranceResult u) {
  r.utterances += 1;
  r.failed_utterances += 1;
  r.per_utterance.push_back(std::move(u));
}

template <class T>
Status Req(const nlohmann::json& j, const char* key, const std::string& where, T* out) {
  auto it = j.find(key);
  if (it == j.end()) return Error(where + "." + key + ": missing");
  try {
    *out = it->get<T>();
  } catch (const std::exception&) {
    return Error(where + "." + key + ": wrong type");
  }
  return Status::Ok();
}

Result<ModeReport> ModeFromJson(const nlohmann::json& j, const std::string& mode) {
  if (!j.is_object()) return Error(mode + ": expected an object");
  ModeReport r;
  r.mode = mode;
  for (auto [key, field] : kCounts) ASRC_RETURN_IF_ERROR(Req(j, key, mode, &(r.*field)));
  for (auto [key, field] : kSeconds) ASRC_RETURN_IF_ERROR(Req(j, key, mode, &(r.*field)));
  ASRC_RETURN_IF_ERROR(Req(j, "threads", mode, &r.threads));
  auto bad = [&](const char* key) { return Error(mode + "." + key + ": negative or not finite"); };
  for (auto [key, field] : kCounts)
    if (r.*field < 0) return bad(key);
  for (auto [key, field] : kSeconds)
    if (!(r.*field >= 0) || !std::isfinite(r.*field)) return bad(key);
  if (r.failed_utterances > r.utterances)
    return Error(mode + ".failed_utterances: more than utterances");
  if (r.substitutions + r.deletions > r.words)
    return Error(mode + ".substitutions + deletions: more than words (" + std::to_string(r.words) + ")");
  const char* raw = mode == "streaming" ? "chunk_ms" : "final_ms";
  ASRC_RETURN_IF_ERROR(Req(j, raw, mode + " (not a partial report from --shard?)",
                           mode == "streaming" ? &r.chunk_ms : &r.final_ms));
  auto pu = j.find("per_utterance");
  if (pu == j.end() || !pu->is_array()) return Error(mode + ".per_utterance: missing");
  for (size_t i = 0; i < pu->size(); ++i) {
    const auto& e = (*pu)[i];
    std::string where = mode + ".per_utterance[" + std::to_string(i) + "]";
    UtteranceResult u;
    ASRC_RETURN_IF_ERROR(Req(e, "index", where, &u.index));
    ASRC_RETURN_IF_ERROR(Req(e, "id", where, &u.id));
    ASRC_RETURN_IF_ERROR(Req(e, "reference", where, &u.reference));
    ASRC_RETURN_IF_ERROR(Req(e, "hypothesis", where, &u.hypothesis));
    if (e.contains("error")) {
      u.failed = true;
      ASRC_RETURN_IF_ERROR(Req(e, "error", where, &u.error));
    }
    if (e.contains("alignment")) ASRC_RETURN_IF_ERROR(Req(e, "alignment", where, &u.alignment));
    r.per_utterance.push_back(std::move(u));
  }
  if (static_cast<int64_t>(r.per_utterance.size()) != r.utterances)
    return Error(mode + ".utterances: " + std::to_string(r.utterances) + ", but per_utterance lists " +
                 std::to_string(r.per_utterance.size()));
  r.Finalize();
  return r;
}

// Every utterance's audio file exists, is a regular file and has a readable header (ProbeAudio),
// checked before any model runs so that a bad manifest fails in seconds, naming its files.
Status CheckReadable(const std::vector<ManifestEntry>& entries) {
  std::vector<std::string> bad;
  for (const auto& e : entries) {
    Status st = ProbeAudio(e.audio_path);
    if (!st.ok()) bad.push_back(st.message());
  }
  if (bad.empty()) return Status::Ok();
  std::string list;
  for (size_t i = 0; i < bad.size() && i < 3; ++i) list += (i ? "; " : "") + bad[i];
  if (bad.size() > 3) list += "; and " + std::to_string(bad.size() - 3) + " more";
  return Error(std::to_string(bad.size()) + " of " + std::to_string(entries.size()) +
               " utterances unreadable: " + list + " (--skip-unreadable scores the others)");
}

}  // namespace

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  double pos = p / 100.0 * (v.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos)), hi = std::min(lo + 1, v.size() - 1);
  double f = pos - lo;
  return v[lo] * (1 - f) + v[hi] * f;
}

void ModeReport::Finalize() {
  wer = words > 0 ? 100.0 * (substitutions + deletions + insertions) / words : std::nan("");
  cer = chars > 0 ? 100.0 * char_errors / chars : std::nan("");
  rtf = audio_seconds > 0 ? compute_seconds / audio_seconds : 0.0;
  rtf_cpu = audio_seconds > 0 ? cpu_seconds / audio_seconds : 0.0;
}

nlohmann::json ModeReport::ToJson(bool partial) const {
  nlohmann::json j;
  auto rate = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  j["wer"] = rate(wer);  // null: undefined (no reference words)
  j["cer"] = rate(cer);
  for (auto [key, field] : kCounts) j[key] = this->*field;
  for (auto [key, field] : kSeconds) j[key] = this->*field;
  j["rtf"] = rtf;
  j["rtf_cpu"] = rtf_cpu;
  if (mode == "streaming") {
    j["chunk_ms_p50"] = Percentile(chunk_ms, 50);
    j["chunk_ms_p90"] = Percentile(chunk_ms, 90);
    j["chunks"] = static_cast<int64_t>(chunk_ms.size());
    if (partial) j["chunk_ms"] = chunk_ms;
  } else {
    j["final_ms_p50"] = Percentile(final_ms, 50);
    j["final_ms_p90"] = Percentile(final_ms, 90);
    if (partial) j["final_ms"] = final_ms;
  }
  j["threads"] = threads;
  nlohmann::json pu = nlohmann::json::array();
  for (const auto& u : per_utterance) {
    nlohmann::json e;
    if (partial) e["index"] = u.index;
    e["id"] = u.id;
    e["reference"] = u.reference;
    e["hypothesis"] = u.hypothesis;
    if (u.failed) e["error"] = u.error;
    if (!u.alignment.empty()) e["alignment"] = u.alignment;
    pu.push_back(std::move(e));
  }
  j["per_utterance"] = std::move(pu);
  return j;
}

nlohmann::json EvalReport::ToJson() const {
  nlohmann::json j = nlohmann::json::object();
  if (streaming) j["streaming"] = streaming->ToJson(partial);
  if (lookahead) j["lookahead"] = lookahead->ToJson(partial);
  if (partial) {
    j["shard"] = {{"index", shard_index}, {"count", shard_count}};
    j["provenance"] = provenance;
  }
  return j;
}

Result<EvalReport> EvalReport::FromJson(const nlohmann::json& j) {
  if (!j.is_object()) return Error("expected a JSON object");
  EvalReport r;
  auto sh = j.find("shard");
  if (sh == j.end() || !sh->is_object())
    return Error("shard: missing (not a partial report written with --shard)");
  ASRC_RETURN_IF_ERROR(Req(*sh, "index", "shard", &r.shard_index));
  ASRC_RETURN_IF_ERROR(Req(*sh, "count", "shard", &r.shard_count));
  r.partial = true;
  auto pv = j.find("provenance");
  if (pv == j.end() || !pv->is_object())
    return Error("provenance: missing (a partial report from an older asrc; re-run the shard)");
  r.provenance = *pv;
  if (j.contains("streaming")) {
    ASRC_ASSIGN_OR_RETURN(auto m, ModeFromJson(j["streaming"], "streaming"));
    r.threads = m.threads;
    r.streaming = std::move(m);
  }
  if (j.contains("lookahead")) {
    ASRC_ASSIGN_OR_RETURN(auto m, ModeFromJson(j["lookahead"], "lookahead"));
    r.threads = m.threads;
    r.lookahead = std::move(m);
  }
  if (!r.streaming && !r.lookahead) return Error("no 'streaming' or 'lookahead' result");
  return r;
}

namespace {
Status SameProvenance(const EvalReport& a, const EvalReport& b) {
  if (a.provenance == b.provenance) return Status::Ok();
  std::set<std::string> keys;
  for (const auto& x : {a.provenance, b.provenance})
    for (auto it = x.begin(); it != x.end(); ++it) keys.insert(it.key());
  for (const auto& k : keys) {
    auto va = a.provenance.contains(k) ? a.provenance[k].dump() : "(none)";
    auto vb = b.provenance.contains(k) ? b.provenance[k].dump() : "(none)";
    if (va != vb)
      return Error("eval-merge: shards " + std::to_string(a.shard_index) + " and " +
                   std::to_string(b.shard_index) + " differ in " + k + " (" + va + " vs " + vb +
                   "); they are not parts of one evaluation");
  }
  return Status::Ok();
}
}  // namespace

Status RequireScoredWords(const EvalReport& report) {
  for (const ModeReport* m : {report.streaming ? &*report.streaming : nullptr,
                              report.lookahead ? &*report.lookahead : nullptr}) {
    if (!m || m->words > 0) continue;
    return Error(m->mode + ": WER undefined: the " + std::to_string(m->utterances - m->failed_utterances) +
                 " scored utterance(s) have no reference words (" + std::to_string(m->failed_utterances) +
                 " failed)");
  }
  return Status::Ok();
}

Result<EvalReport> MergeReports(const std::vector<EvalReport>& parts) {
  if (parts.empty()) return Error("eval-merge: no partial reports");
  const int n = parts[0].shard_count;
  std::set<int> seen;
  for (const auto& p : parts) {
    if (!p.partial) return Error("eval-merge: a report is not partial");
    if (p.shard_count != n)
      return Error("eval-merge: shard counts differ (" + std::to_string(p.shard_count) + " vs " +
                   std::to_string(n) + ")");
    if (!seen.insert(p.shard_index).second)
      return Error("eval-merge: shard " + std::to_string(p.shard_index) + " given twice");
    if (p.streaming.has_value() != parts[0].streaming.has_value() ||
        p.lookahead.has_value() != parts[0].lookahead.has_value())
      return Error("eval-merge: shards evaluated different modes");
    ASRC_RETURN_IF_ERROR(SameProvenance(parts[0], p));
  }
  std::set<int64_t> indices;
  std::set<std::string> ids;
  for (const auto& p : parts) {
    const ModeReport& m = p.streaming ? *p.streaming : *p.lookahead;
    for (const auto& u : m.per_utterance) {
      const std::string shard = "eval-merge: shard " + std::to_string(p.shard_index) + ": utterance '" + u.id + "'";
      if (u.index < 0 || u.index % n != p.shard_index)
        return Error(shard + " has index " + std::to_string(u.index) + ", which is not in this shard");
      if (!indices.insert(u.index).second)
        return Error(shard + ": index " + std::to_string(u.index) + " appears twice");
      if (!ids.insert(u.id).second) return Error(shard + ": id appears twice");
    }
  }
  for (int i = 0; i < n; ++i)
    if (!seen.count(i))
      return Error("eval-merge: shard " + std::to_string(i) + "/" + std::to_string(n) + " missing");
  EvalReport out;
  out.threads = parts[0].threads;
  out.provenance = parts[0].provenance;
  auto merge = [&](std::optional<ModeReport> EvalReport::*field) {
    ModeReport m;
    m.mode = (parts[0].*field)->mode;
    m.threads = (parts[0].*field)->threads;
    for (const auto& p : parts) {
      const ModeReport& r = *(p.*field);
      for (auto [key, field] : kCounts) m.*field += r.*field;
      for (auto [key, field] : kSeconds) m.*field += r.*field;
      m.chunk_ms.insert(m.chunk_ms.end(), r.chunk_ms.begin(), r.chunk_ms.end());
      m.final_ms.insert(m.final_ms.end(), r.final_ms.begin(), r.final_ms.end());
      m.per_utterance.insert(m.per_utterance.end(), r.per_utterance.begin(), r.per_utterance.end());
    }
    std::stable_sort(m.per_utterance.begin(), m.per_utterance.end(),
                     [](const UtteranceResult& a, const UtteranceResult& b) { return a.index < b.index; });
    m.Finalize();
    out.*field = std::move(m);
  };
  if (parts[0].streaming) merge(&EvalReport::streaming);
  if (parts[0].lookahead) merge(&EvalReport::lookahead);
  return out;
}

std::string FormatSummary(const EvalReport& report) {
  std::ostringstream os;
  char line[512];
  std::snprintf(line, sizeof line, "%-10s %7s %7s %16s %6s %6s %7s %7s %17s %17s %7s\n", "mode", "WER%",
                "CER%", "S/D/I", "utts", "failed", "RTF", "RTFcpu", "chunk p50/p90 ms",
                "final p50/p90 ms", "threads");
  os << line;
  for (const ModeReport* m : {report.streaming ? &*report.streaming : nullptr,
                              report.lookahead ? &*report.lookahead : nullptr}) {
    if (!m) continue;
    char sdi[64], chunk[64], fin[64];
    std::snprintf(sdi, sizeof sdi, "%lld/%lld/%lld", static_cast<long long>(m->substitutions),
                  static_cast<long long>(m->deletions), static_cast<long long>(m->insertions));
    if (m->mode == "streaming") {
      std::snprintf(chunk, sizeof chunk, "%.2f/%.2f", Percentile(m->chunk_ms, 50), Percentile(m->chunk_ms, 90));
      std::snprintf(fin, sizeof fin, "-");
    } else {
      std::snprintf(chunk, sizeof chunk, "-");
      std::snprintf(fin, sizeof fin, "%.2f/%.2f", Percentile(m->final_ms, 50), Percentile(m->final_ms, 90));
    }
    char wer[32] = "n/a", cer[32] = "n/a";
    if (std::isfinite(m->wer)) std::snprintf(wer, sizeof wer, "%.2f", m->wer);
    if (std::isfinite(m->cer)) std::snprintf(cer, sizeof cer, "%.2f", m->cer);
    std::snprintf(line, sizeof line, "%-10s %7s %7s %16s %6lld %6lld %7.4f %7.4f %17s %17s %7d\n",
                  m->mode.c_str(), wer, cer, sdi, static_cast<long long>(m->utterances),
                  static_cast<long long>(m->failed_utterances), m->rtf, m->rtf_cpu, chunk, fin,
                  m->threads);
    os << line;
  }
  int64_t words = report.streaming ? report.streaming->words : report.lookahead ? report.lookahead->words : 0;
  os << "(WER/CER over " << words << " reference words of the scored utterances; failed ones are "
        "listed in --json per_utterance. RTF: wall-clock compute / audio; RTFcpu: process CPU time / "
        "audio)\n";
  return os.str();
}

Result<std::vector<ManifestEntry>> ReadManifest(const std::string& path, const std::string& split) {
  std::ifstream in(path);
  if (!in) return Error(path + ": cannot open manifest");
  const std::string base = DirName(path);
  std::vector<ManifestEntry> out;
  std::map<std::string, int64_t> id_line;  // results and merged shards are keyed by id
  std::string line;
  int64_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(lineno);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      return Error(where + ": not valid JSON");
    }
    if (!j.is_object()) return Error(where + ": expected a JSON object");
    ManifestEntry e;
    auto str = [&](const char* key, std::string* v, bool required) -> Status {
      auto it = j.find(key);
      if (it == j.end() || it->is_null()) {
        if (required) return Error(where + ": '" + key + "' missing");
        return Status::Ok();
      }
      if (!it->is_string()) return Error(where + ": '" + key + "' is not a string");
      *v = it->get<std::string>();
      return Status::Ok();
    };
    std::string audio;
    ASRC_RETURN_IF_ERROR(str("audio_filepath", &audio, true));
    if (audio.empty()) return Error(where + ": 'audio_filepath' is empty");  // else: the manifest's folder
    ASRC_RETURN_IF_ERROR(str("text", &e.text, true));
    ASRC_RETURN_IF_ERROR(str("split", &e.split, false));
    ASRC_RETURN_IF_ERROR(str("id", &e.id, false));
    if (!split.empty() && e.split != split) continue;
    if (e.id.empty()) e.id = audio;
    auto [seen, fresh] = id_line.emplace(e.id, lineno);
    if (!fresh)
      return Error(where + ": id '" + e.id + "' already on line " + std::to_string(seen->second) +
                   " (give each utterance its own \"id\")");
    e.audio_path = IsAbsolute(audio) ? audio : base + "/" + audio;
    auto d = j.find("duration");
    if (d != j.end() && d->is_number()) e.duration = d->get<double>();
    e.index = static_cast<int64_t>(out.size());
    out.push_back(std::move(e));
  }
  return out;
}

Result<EvalReport> Evaluate(const ir::Model& model, const std::string& manifest_path,
                            const EvalOptions& options) {
  if (!options.streaming && !options.lookahead) return Error("eval: no mode selected");
  if (options.shard_count < 1 || options.shard_index < 0 || options.shard_index >= options.shard_count)
    return Error("eval: bad shard " + std::to_string(options.shard_index) + "/" +
                 std::to_string(options.shard_count));
  ASRC_ASSIGN_OR_RETURN(auto entries, ReadManifest(manifest_path, options.split));
  if (entries.empty())
    return Error(manifest_path + ": no utterances" +
                 (options.split.empty() ? std::string() : " with split '" + options.split + "'"));
  if (options.limit > 0 && static_cast<int64_t>(entries.size()) > options.limit)
    entries.resize(options.limit);
  if (options.shard_count > 1) {
    std::vector<ManifestEntry> mine;
    for (auto& e : entries)
      if (e.index % options.shard_count == options.shard_index) mine.push_back(std::move(e));
    entries.swap(mine);
  }

  if (!options.skip_unreadable) ASRC_RETURN_IF_ERROR(CheckReadable(entries));

  RecognizerOptions ro;
  ro.threads = std::max(1, options.threads);
  ro.search.beam = options.beam;
  ro.search.max_symbols_per_frame = options.max_symbols_per_frame;
  ro.sessions = options.sessions;
  ro.cache_decoder = options.cache_decoder;
  ro.lookahead_segment_s = options.lookahead_segment_s;
  ro.lookahead_context_s = options.lookahead_context_s;
  ASRC_ASSIGN_OR_RETURN(auto rec, Recognizer::Create(model, ro));
  const bool do_stream = options.streaming && rec->has_streaming();
  const bool do_look = options.lookahead;
  if (options.streaming && !rec->has_streaming() && !options.lookahead)
    return Error("eval: the bundle ('" + rec->config().model_type +
                 "') has no causal encoder, so no streaming mode; use --mode lookahead");

  EvalReport report;
  report.threads = ro.threads;
  report.partial = options.shard_count > 1;
  report.shard_index = options.shard_index;
  report.shard_count = options.shard_count;
  report.provenance = {{"split", options.split},
                       {"mode", do_stream && do_look ? "both" : do_stream ? "streaming" : "lookahead"},
                       {"beam", options.beam},
                       {"max_symbols", options.max_symbols_per_frame},
                       {"limit", options.limit},
                       {"lowercase", options.normalize.lowercase},
                       {"strip_punctuation", options.normalize.strip_punctuation},
                       {"lookahead_segment_s", options.lookahead_segment_s},
                       {"lookahead_context_s", options.lookahead_context_s}};
  ModeReport sm, lm;
  sm.mode = "streaming";
  lm.mode = "lookahead";
  sm.threads = lm.threads = ro.threads;
  const int rate = rec->config().frontend.sample_rate;
  ProgressBar bar(options.progress, static_cast<int64_t>(entries.size()));
  int64_t done = 0, failed = 0;
  for (const auto& e : entries) {
    UtteranceResult base;
    base.index = e.index;
    base.id = e.id;
    base.reference = e.text;
    std::string error;
    Result<Recognition> r = Error("");
    auto audio = LoadAudio(e.audio_path, rate);
    if (!audio.ok()) {
      error = audio.status().message();
    } else if (rec->fbank().NumFrames(static_cast<int64_t>(audio->samples.size())) == 0) {
      error = e.audio_path + ": audio too short for one feature frame";
    } else {
      // Bad audio is the utterance's problem; a model that fails to run is the evaluation's.
      r = rec->Recognize(audio->samples, do_stream, do_look);
      if (!r.ok()) return r.status().With("utterance '" + e.id + "'");
    }
    if (!error.empty() && !options.skip_unreadable)
      return Error(error + " (utterance '" + e.id + "'; --skip-unreadable scores the others)");
    if (!error.empty()) {
      base.failed = true;
      base.error = error;
      if (do_stream) AddFailure(sm, base);
      if (do_look) AddFailure(lm, base);
      ++failed;
    } else {
      const double secs = audio->seconds();
      if (do_stream) {
        UtteranceResult u = base;
        u.hypothesis = r->streaming_text;
        AddScore(sm, std::move(u), options, secs, r->streaming_ms, r->streaming_cpu_ms);
        sm.chunk_ms.insert(sm.chunk_ms.end(), r->chunk_ms.begin(), r->chunk_ms.end());
      }
      if (do_look) {
        UtteranceResult u = base;
        u.hypothesis = r->lookahead_text;
        AddScore(lm, std::move(u), options, secs, r->lookahead_ms, r->lookahead_cpu_ms);
        lm.final_ms.push_back(r->final_ms);
      }
    }
    bar.Update(++done, failed);
  }
  bar.Done();
  if (do_stream) {
    sm.Finalize();
    report.streaming = std::move(sm);
  }
  if (do_look) {
    lm.Finalize();
    report.lookahead = std::move(lm);
  }
  return report;
}

}  // namespace asrc::asr
