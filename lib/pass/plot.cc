#include "pass/plot.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace asrc::pass {

namespace {

// Canvas: the frame sits left, the legend column right of it.
const double kW = 760, kH = 380, kL = 64, kFrameR = 580, kT = 34, kB = 52, kLegendX = 594;

std::string Num(double v) {
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(1);
  os << v;
  return os.str();
}

struct Box {
  double x0, y0, x1, y1;
  bool Hits(const Box& o) const { return x0 < o.x1 && o.x0 < x1 && y0 < o.y1 && o.y0 < y1; }
};

struct Frame {
  std::vector<double> xt, yt;  // ticks; the axes span the first to the last
  double X(double x) const { return kL + (x - xt.front()) / (xt.back() - xt.front()) * (kFrameR - kL); }
  double Y(double y) const {
    return kH - kB - (y - yt.front()) / (yt.back() - yt.front()) * (kH - kT - kB);
  }
};

void Head(std::ostringstream& o, const std::string& title) {
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kW << "\" height=\"" << kH
    << "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  o << "<text x=\"" << (kL + kFrameR) / 2 << "\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">"
    << HtmlEscape(title) << "</text>\n";
}

std::string Empty(std::ostringstream& o) {
  o << "<text x=\"" << (kL + kFrameR) / 2 << "\" y=\"" << kH / 2
    << "\" text-anchor=\"middle\">(no measurements)</text></svg>\n";
  return o.str();
}

// Frame, grid lines, tick labels, axis labels.
void Axes(std::ostringstream& o, const Frame& f, const std::string& xlabel, const std::string& ylabel) {
  o << "<rect x=\"" << kL << "\" y=\"" << kT << "\" width=\"" << kFrameR - kL << "\" height=\""
    << kH - kT - kB << "\" fill=\"none\" stroke=\"#888\"/>\n";
  const double ys = f.yt.size() > 1 ? f.yt[1] - f.yt[0] : 1;
  for (double v : f.yt) {
    const double y = f.Y(v);
    o << "<line x1=\"" << kL << "\" x2=\"" << kFrameR << "\" y1=\"" << Num(y) << "\" y2=\"" << Num(y)
      << "\" stroke=\"#eee\"/>\n<text x=\"" << kL - 5 << "\" y=\"" << Num(y + 4)
      << "\" text-anchor=\"end\">" << TickText(v, ys) << "</text>\n";
  }
  if (!f.xt.empty()) {
    const double xs = f.xt.size() > 1 ? f.xt[1] - f.xt[0] : 1;
    for (double v : f.xt) {
      const double x = f.X(v);
      o << "<line x1=\"" << Num(x) << "\" x2=\"" << Num(x) << "\" y1=\"" << kT << "\" y2=\"" << kH - kB
        << "\" stroke=\"#eee\"/>\n<text x=\"" << Num(x) << "\" y=\"" << kH - kB + 15
        << "\" text-anchor=\"middle\">" << TickText(v, xs) << "</text>\n";
    }
  }
  if (!xlabel.empty())
    o << "<text x=\"" << (kL + kFrameR) / 2 << "\" y=\"" << kH - 12 << "\" text-anchor=\"middle\">"
      << HtmlEscape(xlabel) << "</text>\n";
  o << "<text transform=\"translate(14," << (kT + kH - kB) / 2 << ") rotate(-90)\" text-anchor=\"middle\">"
    << HtmlEscape(ylabel) << "</text>\n";
}

void LegendEntry(std::ostringstream& o, const std::string& color, const std::string& name, bool ring,
                 double* y) {
  if (ring)
    o << "<circle cx=\"" << kLegendX + 5 << "\" cy=\"" << *y - 4 << "\" r=\"6\" fill=\"none\" stroke=\""
      << color << "\" stroke-width=\"2\"/>";
  else
    o << "<rect x=\"" << kLegendX << "\" y=\"" << *y - 9 << "\" width=\"10\" height=\"10\" fill=\"" << color
      << "\"/>";
  // Long names wrap at ~22 characters on word boundaries so the column stays inside the canvas.
  std::vector<std::string> lines(1);
  std::istringstream words(name);
  for (std::string w; words >> w;) {
    if (!lines.back().empty() && lines.back().size() + w.size() > 21) lines.emplace_back();
    lines.back() += (lines.back().empty() ? "" : " ") + w;
  }
  for (const std::string& line : lines) {
    o << "<text x=\"" << kLegendX + 15 << "\" y=\"" << *y << "\">" << HtmlEscape(line) << "</text>\n";
    *y += 13;
  }
  *y += 5;
}

bool Finite(double x, double y) { return std::isfinite(x) && std::isfinite(y); }

// Labels of one series: coincident points (within 2 px) share one label; each label goes to the
// first candidate spot that stays in the frame and overlaps no point and no placed label.
void PlaceLabels(std::ostringstream& o, const Frame& f, const PlotSeries& s, const std::vector<Box>& points,
                 std::vector<Box>& placed) {
  std::vector<bool> done(s.x.size(), false);
  for (size_t i = 0; i < s.x.size(); ++i) {
    if (done[i] || !Finite(s.x[i], s.y[i]) || i >= s.labels.size() || s.labels[i].empty()) continue;
    const double px = f.X(s.x[i]), py = f.Y(s.y[i]);
    std::string text = s.labels[i];
    for (size_t j = i + 1; j < s.x.size(); ++j) {
      if (!Finite(s.x[j], s.y[j]) || j >= s.labels.size() || s.labels[j].empty()) continue;
      if (std::fabs(f.X(s.x[j]) - px) < 2 && std::fabs(f.Y(s.y[j]) - py) < 2) {
        text += "," + s.labels[j];
        done[j] = true;
      }
    }
    const double w = 6.2 * text.size() + 2, h = 11;
    const double cand[][2] = {{7, -5}, {7, 9}, {-7 - w, -5}, {-7 - w, 9}, {-w / 2, -9}, {-w / 2, 17},
                              {12, -14}, {12, 18}, {-12 - w, -14}, {-12 - w, 18}};
    for (const auto& c : cand) {
      Box b{px + c[0], py + c[1] - h + 2, px + c[0] + w, py + c[1] + 2};
      if (b.x0 < kL || b.x1 > kFrameR || b.y0 < kT || b.y1 > kH - kB) continue;
      bool free = true;
      for (const Box& p : points) free = free && !p.Hits(b);
      for (const Box& p : placed) free = free && !p.Hits(b);
      if (!free) continue;
      placed.push_back(b);
      o << "<text x=\"" << Num(b.x0 + 1) << "\" y=\"" << Num(b.y1 - 2) << "\" fill=\"" << s.color << "\">"
        << HtmlEscape(text) << "</text>\n";
      break;
    }
  }
}

}  // namespace

std::string HtmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string Fixed(double v, int prec) {
  if (!std::isfinite(v)) return "-";
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(prec);
  os << v;
  return os.str();
}

std::string MarkdownTable(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::ostringstream o;
  o << "|";
  for (const auto& h : header) o << " " << h << " |";
  o << "\n|";
  for (size_t i = 0; i < header.size(); ++i) o << "---|";
  o << "\n";
  for (const auto& r : rows) {
    o << "|";
    for (const auto& c : r) o << " " << c << " |";
    o << "\n";
  }
  return o.str();
}

std::string HtmlTable(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::ostringstream o;
  o << "<table><tr>";
  for (const auto& h : header) o << "<th>" << HtmlEscape(h) << "</th>";
  o << "</tr>\n";
  for (const auto& r : rows) {
    o << "<tr>";
    for (const auto& c : r) o << "<td>" << HtmlEscape(c) << "</td>";
    o << "</tr>\n";
  }
  o << "</table>\n";
  return o.str();
}

std::vector<double> NiceTicks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {0, 1};
  if (hi < lo) std::swap(lo, hi);
  if (hi - lo < 1e-12 * std::max(1.0, std::fabs(hi))) {  // one value: a round unit around it
    const double mag = std::fabs(lo) > 0 ? std::pow(10, std::floor(std::log10(std::fabs(lo)))) : 1;
    lo -= mag / 2;
    hi += mag / 2;
  }
  const double raw = (hi - lo) / std::max(1, target - 1);
  const double p = std::pow(10, std::floor(std::log10(raw)));
  double step = 10 * p;
  for (double m : {1.0, 2.0, 2.5, 5.0})
    if (m * p >= raw) {
      step = m * p;
      break;
    }
  const double first = std::floor(lo / step + 1e-9) * step, last = std::ceil(hi / step - 1e-9) * step;
  std::vector<double> t;
  for (int k = 0; first + k * step <= last + step * 1e-6; ++k) {
    double v = first + k * step;
    if (std::fabs(v) < step * 1e-9) v = 0;
    t.push_back(v);
  }
  if (t.size() < 2) t.push_back(t.back() + step);
  return t;
}

std::string TickText(double value, double step) {
  int decimals = 0;
  for (double s = std::fabs(step); decimals < 6 && std::fabs(s - std::round(s)) > 1e-6 * std::max(1.0, s);
       s *= 10)
    ++decimals;
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(decimals);
  os << value;
  return os.str();
}

std::vector<size_t> ParetoFront(const std::vector<double>& x, const std::vector<double>& y) {
  std::vector<size_t> idx;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i)
    if (Finite(x[i], y[i])) idx.push_back(i);
  std::vector<size_t> front;
  for (size_t i : idx) {
    bool dominated = false;
    for (size_t j : idx)
      dominated = dominated || (x[j] <= x[i] && y[j] <= y[i] && (x[j] < x[i] || y[j] < y[i]));
    if (!dominated) front.push_back(i);
  }
  std::sort(front.begin(), front.end(), [&](size_t a, size_t b) { return x[a] < x[b] || (x[a] == x[b] && a < b); });
  return front;
}

namespace {

// The y range the axis shows: every value, unless a few lie far outside the rest and leaving them
// out at least halves the range; those then sit on the frame's edge. Far: beyond three spreads
// from the quartiles, a spread being the interquartile range but at least a quarter of the median
// (a diverged configuration at 490% WER beside a cluster at 70-90%; not 40 beside 50).
std::pair<double, double> YAxisRange(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  if (n < 5) return {v.front(), v.back()};
  const double q1 = v[n / 4], q3 = v[(3 * n) / 4];
  const double spread = std::max({q3 - q1, 0.25 * std::fabs(v[n / 2]), 1e-9});
  const double lo_fence = q1 - 3 * spread, hi_fence = q3 + 3 * spread;
  double lo = INFINITY, hi = -INFINITY;
  for (double y : v)
    if (y >= lo_fence && y <= hi_fence) lo = std::min(lo, y), hi = std::max(hi, y);
  if (!(hi >= lo) || 2 * (hi - lo) > v.back() - v.front()) return {v.front(), v.back()};
  return {lo, hi};
}

// A point outside the axis range: a triangle on the frame's edge pointing the way it lies.
void OffScaleMark(std::ostringstream& o, double x, double y, bool above, const std::string& color,
                  const std::string& tip) {
  const double d = above ? -6 : 6;
  o << "<polygon points=\"" << Num(x - 5) << "," << Num(y) << " " << Num(x + 5) << "," << Num(y) << " " << Num(x)
    << "," << Num(y + d) << "\" fill=\"" << color << "\"><title>" << HtmlEscape(tip) << "</title></polygon>\n";
}

}  // namespace

std::string ScatterSvg(const std::string& title, const std::string& xlabel, const std::string& ylabel,
                       const std::vector<PlotSeries>& series) {
  double xlo = INFINITY, xhi = -INFINITY;
  std::vector<double> ys;
  for (const auto& s : series)
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!Finite(s.x[i], s.y[i])) continue;
      xlo = std::min(xlo, s.x[i]), xhi = std::max(xhi, s.x[i]);
      ys.push_back(s.y[i]);
    }
  std::ostringstream o;
  Head(o, title);
  if (!std::isfinite(xlo)) return Empty(o);
  const auto [ylo, yhi] = YAxisRange(ys);
  Frame f{NiceTicks(xlo, xhi), NiceTicks(ylo, yhi)};
  Axes(o, f, xlabel, ylabel);
  // Drawn copies: off-scale y on the axis ends, their value added to the label.
  std::vector<PlotSeries> shown = series;
  bool any_off = false;
  for (auto& s : shown)
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!Finite(s.x[i], s.y[i]) || (s.y[i] >= f.yt.front() && s.y[i] <= f.yt.back())) continue;
      if (i < s.labels.size() && !s.labels[i].empty()) s.labels[i] += " (" + Fixed(s.y[i], 1) + ")";
      s.y[i] = std::clamp(s.y[i], f.yt.front(), f.yt.back());
      any_off = true;
    }
  std::vector<Box> points, placed;
  for (const auto& s : shown)
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i)
      if (Finite(s.x[i], s.y[i])) points.push_back({f.X(s.x[i]) - 5, f.Y(s.y[i]) - 5, f.X(s.x[i]) + 5, f.Y(s.y[i]) + 5});
  double legend_y = kT + 10;
  bool any_front = false;
  for (size_t si = 0; si < shown.size(); ++si) {
    const PlotSeries& s = shown[si];
    const std::vector<double>& y_true = series[si].y;
    if (s.connect) {
      std::string pts;
      for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i)
        if (Finite(s.x[i], s.y[i])) pts += Num(f.X(s.x[i])) + "," + Num(f.Y(s.y[i])) + " ";
      o << "<polyline points=\"" << pts << "\" fill=\"none\" stroke=\"" << s.color
        << "\" stroke-dasharray=\"4 3\"/>\n";
    }
    if (s.pareto) {  // on the true values; drawn where the points are shown
      const std::vector<size_t> front = ParetoFront(s.x, y_true);
      std::string pts;
      for (size_t k = 0; k < front.size(); ++k) {  // a step line: each point's WER holds until the next
        const size_t i = front[k];
        if (k) pts += Num(f.X(s.x[i])) + "," + Num(f.Y(s.y[front[k - 1]])) + " ";
        pts += Num(f.X(s.x[i])) + "," + Num(f.Y(s.y[i])) + " ";
      }
      o << "<polyline points=\"" << pts << "\" fill=\"none\" stroke=\"" << s.color << "\" stroke-width=\"1.5\"/>\n";
      for (size_t i : front)
        o << "<circle cx=\"" << Num(f.X(s.x[i])) << "\" cy=\"" << Num(f.Y(s.y[i])) << "\" r=\"7\" fill=\"none\" stroke=\""
          << s.color << "\" stroke-width=\"2\"/>\n";
      any_front = any_front || !front.empty();
    }
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!Finite(s.x[i], s.y[i])) continue;
      const std::string tip = i < s.tips.size() ? s.tips[i] : "";
      if (s.y[i] != y_true[i])
        OffScaleMark(o, f.X(s.x[i]), f.Y(s.y[i]), y_true[i] > s.y[i], s.color, tip);
      else
        o << "<circle cx=\"" << Num(f.X(s.x[i])) << "\" cy=\"" << Num(f.Y(s.y[i])) << "\" r=\"4\" fill=\"" << s.color
          << "\"><title>" << HtmlEscape(tip) << "</title></circle>\n";
    }
    LegendEntry(o, s.color, s.name, false, &legend_y);
  }
  for (const auto& s : shown) PlaceLabels(o, f, s, points, placed);
  if (any_front) LegendEntry(o, "#555", "ringed + solid line: Pareto front (smaller and better)", true, &legend_y);
  if (any_off) LegendEntry(o, "#555", "triangle on the frame: off the axis (value in its label)", false, &legend_y);
  o << "</svg>\n";
  return o.str();
}

std::string BarsSvg(const std::string& title, const std::string& ylabel, const std::vector<std::string>& groups,
                    const std::vector<PlotSeries>& series) {
  double lo = 0, hi = 0;
  bool any = false;
  for (const auto& s : series)
    for (double v : s.y)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v), any = true;
  std::ostringstream o;
  Head(o, title);
  if (!any || groups.empty()) return Empty(o);
  Frame f{{}, NiceTicks(lo, hi)};
  Axes(o, f, "", ylabel);
  const double gw = (kFrameR - kL) / groups.size();
  const double bw = gw * 0.8 / std::max<size_t>(1, series.size());
  const double y0 = f.Y(0);
  o << "<line x1=\"" << kL << "\" x2=\"" << kFrameR << "\" y1=\"" << Num(y0) << "\" y2=\"" << Num(y0)
    << "\" stroke=\"#444\"/>\n";
  for (size_t g = 0; g < groups.size(); ++g) {
    const double gx = kL + g * gw + gw * 0.1;
    for (size_t si = 0; si < series.size(); ++si) {
      const double v = g < series[si].y.size() ? series[si].y[g] : NAN;
      if (!std::isfinite(v)) continue;
      const double y = f.Y(v);
      o << "<rect x=\"" << Num(gx + si * bw) << "\" y=\"" << Num(std::min(y, y0)) << "\" width=\"" << Num(bw * 0.92)
        << "\" height=\"" << Num(std::max(0.5, std::fabs(y0 - y))) << "\" fill=\"" << series[si].color << "\"><title>"
        << HtmlEscape(groups[g] + " " + series[si].name) << ": " << TickText(v, 0.01) << "</title></rect>\n";
    }
    // Group names under the frame; long ones are cut so neighbours never overlap.
    std::string name = groups[g];
    const size_t fit = static_cast<size_t>(std::max(3.0, gw / 6.2));
    if (name.size() > fit) name = name.substr(0, fit - 1) + "~";
    o << "<text x=\"" << Num(kL + g * gw + gw / 2) << "\" y=\"" << kH - kB + 15 << "\" text-anchor=\"middle\"><title>"
      << HtmlEscape(groups[g]) << "</title>" << HtmlEscape(name) << "</text>\n";
  }
  double legend_y = kT + 10;
  for (const auto& s : series) LegendEntry(o, s.color, s.name, false, &legend_y);
  o << "</svg>\n";
  return o.str();
}

}  // namespace asrc::pass
