// What every asrc command promises about what it writes (README "Outputs and exit codes"):
// an output never replaces one of the command's inputs, a file appears whole or not at all
// (written to a temporary sibling and renamed; the temporary is removed on error), and a folder
// is replaced only when it is empty or a bundle asrc would have written.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/files.h"
#include "core/folders.h"
#include "core/status.h"

namespace asrc::app {

// An error when writing `out` would overwrite or replace one of `inputs`: the same file (also
// through a link), or a folder holding an input. `what` names the output in the message
// ("--json", "OUT"). An empty `out` is an error too.
Status RefuseOverInputs(const std::string& out, const std::vector<std::string>& inputs,
                        const std::string& what);

// An error unless `dir` could be created (or is an existing folder) and written into: the nearest
// existing folder on its path is a writable folder. Creates nothing; `what` names it ("--out").
Status CheckCanCreateFolder(const std::string& dir, const std::string& what);

// An error when `path` exists and is not an asrc eval report (a JSON object with "streaming" or
// "lookahead"; or an empty file) that `eval --json` / `eval-merge --json` may replace: the
// audio, a model, notes — a file the command did not write. `what` names the flag ("eval: --json").
Status RefuseReplacingNonReport(const std::string& path, const std::string& what);

// WriteFileAtomic (whole or not at all): core/files.h.

// CheckReplaceableBundleFolder (the folders a bundle save may replace): core/folders.h.

// FNV-1a 64 of a file's bytes, or of a folder's regular files (sorted names and bytes), as 16
// hex digits: what an eval shard records so that eval-merge can refuse mixed shards.
Result<std::string> ContentHash(const std::string& path);

}  // namespace asrc::app
