// Tables and inline SVG charts for the compress and ablation reports (no script, no network), drawn so a
// person reads them at a glance:
//   - ticks at round values (1, 2, 2.5 or 5 times a power of ten) that enclose the data;
//   - the legend in its own column right of the plot frame, never over the data;
//   - point labels placed in the first free spot around the point (labels of coincident points
//     merged into one, "1,4"); a label with no free spot is left out (its point keeps a hover
//     title), so no two labels overlap;
//   - a few values far outside the rest (beyond three interquartile spreads, when leaving them out
//     at least halves the y range) do not squash the others: they sit as triangles on the frame's
//     edge with their value in the label.
#pragma once

#include <string>
#include <vector>

namespace asrc::pass {

struct PlotSeries {
  std::string name, color;
  std::vector<double> x, y;          // NaN: no point
  std::vector<std::string> labels;   // per point: the text drawn beside it ("" or absent: none)
  std::vector<std::string> tips;     // per point: hover title
  bool connect = false;              // dashed line through the points in order
  bool pareto = false;               // ring the Pareto-optimal points (lower x and y are better)
                                     // and join them with a solid step line
};

// Round tick values covering [lo, hi], about `target` of them (lo == hi: a unit around it).
std::vector<double> NiceTicks(double lo, double hi, int target = 5);
// A tick value with just the decimals its step needs ("0.5", "2.5", "40").
std::string TickText(double value, double step);
// Indices of the points no other point dominates (x' <= x and y' <= y, one strictly), NaNs
// skipped; in increasing x.
std::vector<size_t> ParetoFront(const std::vector<double>& x, const std::vector<double>& y);

std::string ScatterSvg(const std::string& title, const std::string& xlabel, const std::string& ylabel,
                       const std::vector<PlotSeries>& series);
// Grouped bars (series[i].y[g]: the bar of series i in group g); negative values grow down from
// a zero line.
std::string BarsSvg(const std::string& title, const std::string& ylabel,
                    const std::vector<std::string>& groups, const std::vector<PlotSeries>& series);

std::string HtmlEscape(const std::string& s);
// `v` with `prec` decimals; "-" when not finite.
std::string Fixed(double v, int prec = 2);
// A table as markdown ("| a | b |" lines) and as an HTML <table>.
std::string MarkdownTable(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);
std::string HtmlTable(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);

}  // namespace asrc::pass
