// cs231n knn: k-nearest neighbours on raw pixels, L2 distances three ways, 5-fold cross-validation of k.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "common.hpp"
#include "train/plot.hpp"

namespace cs231n {

using namespace xg;

namespace {

constexpr int64_t D = data::kImageBytes;  // 3072 pixel values per image

// Images [N, 3072] as f64 0..255 (CS231n works on the raw pixels, in float64) and their labels.
Tensor pixels(const data::Subset& s, std::vector<int64_t>& labels) {
  Tensor x = Tensor::empty({s.size(), D}, Dtype::f64);
  double* px = x.data<double>();
  labels.resize(static_cast<size_t>(s.size()));
  for (int64_t i = 0; i < s.size(); ++i) {
    const uint8_t* img = s.image(i);
    for (int64_t k = 0; k < D; ++k) px[i * D + k] = img[k];
    labels[static_cast<size_t>(i)] = s.label(i);
  }
  return x;
}

// dists[i, j] = ||test_i - train_j||: every pair, every pixel, as scalar loops.
Tensor two_loops(const Tensor& test, const Tensor& train) {
  const int64_t N = test.shape()[0], M = train.shape()[0];
  Tensor out = Tensor::empty({N, M}, Dtype::f64);
  const double *a = test.data<double>(), *b = train.data<double>();
  double* d = out.data<double>();
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < M; ++j) {
      double s = 0;
      for (int64_t k = 0; k < D; ++k) s += (a[i * D + k] - b[j * D + k]) * (a[i * D + k] - b[j * D + k]);
      d[i * M + j] = std::sqrt(s);
    }
  return out;
}

// One row per test image, by broadcasting: sqrt(sum((train - test_i)^2, 1)).
Tensor one_loop(const Tensor& test, const Tensor& train) {
  NoGradGuard no_grad;
  std::vector<Tensor> rows;
  for (int64_t i = 0; i < test.shape()[0]; ++i) {
    Tensor diff = sub(train, slice(test, 0, i, i + 1));  // [M, D] - [1, D]
    rows.push_back(sqrt(sum(mul(diff, diff), {1})));
  }
  return stack(rows, 0);
}

// No loops: xg::cdist is one matmul and two broadcast sums (||a||^2 + ||b||^2 - 2 a.b).
Tensor no_loops(const Tensor& test, const Tensor& train) {
  NoGradGuard no_grad;
  return cdist(test, train);
}

// For each row of dists [N, M]: the training indices by increasing distance (ties by index).
std::vector<std::vector<int64_t>> neighbour_order(const Tensor& dists, int64_t keep) {
  const int64_t N = dists.shape()[0], M = dists.shape()[1];
  const double* d = dists.data<double>();
  std::vector<std::vector<int64_t>> order(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) {
    auto& o = order[static_cast<size_t>(i)];
    o.resize(static_cast<size_t>(M));
    std::iota(o.begin(), o.end(), int64_t{0});
    const int64_t k = std::min(keep, M);
    std::partial_sort(o.begin(), o.begin() + k, o.end(), [&](int64_t a, int64_t b) {
      return d[i * M + a] < d[i * M + b] || (d[i * M + a] == d[i * M + b] && a < b);
    });
    o.resize(static_cast<size_t>(k));
  }
  return order;
}

// Majority vote among the k nearest; a tie goes to the smaller label (CS231n's argmax of bincount).
double knn_accuracy(const std::vector<std::vector<int64_t>>& order, const std::vector<int64_t>& train_labels,
                    const std::vector<int64_t>& test_labels, int64_t k) {
  int64_t correct = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    int64_t votes[data::kClasses] = {};
    for (int64_t j = 0; j < std::min<int64_t>(k, static_cast<int64_t>(order[i].size())); ++j)
      ++votes[train_labels[static_cast<size_t>(order[i][static_cast<size_t>(j)])]];
    const int64_t pred = std::max_element(votes, votes + data::kClasses) - votes;  // first maximum
    correct += pred == test_labels[i];
  }
  return static_cast<double>(correct) / static_cast<double>(order.size());
}

double frobenius_diff(const Tensor& a, const Tensor& b) {
  const double *x = a.data<double>(), *y = b.data<double>();
  double s = 0;
  for (int64_t i = 0; i < a.numel(); ++i) s += (x[i] - y[i]) * (x[i] - y[i]);
  return std::sqrt(s);
}

}  // namespace

int run_knn(const Common& c, const KnnOptions& o) {
  const Timer total;
  const std::string dir = out_dir(c, "knn");
  Cifar d = load_cifar(c, 0, 1000, 0);
  const data::Subset all_train(d.train_set);
  check(o.num_train >= o.folds && o.num_train <= all_train.size() && o.num_test > 0 && o.folds >= 2,
        "knn: need folds >= 2 and folds <= num-train <= 50000, num-test > 0; got {} folds, {} train, {} test", o.folds,
        o.num_train, o.num_test);
  std::vector<int64_t> ytr, yte;
  const Tensor xtr = pixels(all_train.first(o.num_train), ytr), xte = pixels(d.test.first(o.num_test), yte);
  fmt::print("kNN on the first {} training and {} test images (raw pixels, f64)\n", o.num_train, o.num_test);

  // Warm-up on two images, so no method pays for starting OpenBLAS or the worker pool in its timing.
  (void)two_loops(slice(xte, 0, 0, 1), slice(xtr, 0, 0, 1)), (void)one_loop(slice(xte, 0, 0, 1), slice(xtr, 0, 0, 1));
  (void)no_loops(slice(xte, 0, 0, 1), slice(xtr, 0, 0, 1));
  // Each method timed in wall and in CPU seconds (the comparison uses CPU: the machine is shared).
  Timer t;
  CpuTimer cpu;
  const Tensor d2 = two_loops(xte, xtr);
  const double s2 = t.seconds(), c2 = cpu.seconds();
  t = Timer(), cpu = CpuTimer();
  const Tensor d1 = one_loop(xte, xtr);
  const double s1 = t.seconds(), c1 = cpu.seconds();
  t = Timer(), cpu = CpuTimer();
  const Tensor d0 = no_loops(xte, xtr);
  const double s0 = t.seconds(), c0 = cpu.seconds();
  const double diff1 = frobenius_diff(d2, d1), diff0 = frobenius_diff(d2, d0);
  fmt::print("two loops {:.2f} s ({:.2f} s CPU), one loop {:.2f} s ({:.2f} s CPU), no loops {:.2f} s ({:.2f} s CPU): "
             "no loops is {:.0f}x faster than two loops in CPU time\n", s2, c2, s1, c1, s0, c0, c2 / c0);
  fmt::print("Frobenius norm of the difference to two loops: one loop {:.3g}, no loops {:.3g}: {}\n", diff1, diff0,
             diff1 < 1e-3 && diff0 < 1e-3 ? "the distance matrices are the same" : "THE DISTANCE MATRICES DIFFER");

  const std::vector<int64_t> ks{1, 3, 5, 8, 10, 12, 15, 20, 50, 100};
  const auto order = neighbour_order(d0, ks.back());
  const double acc1 = knn_accuracy(order, ytr, yte, 1), acc5 = knn_accuracy(order, ytr, yte, 5);
  fmt::print("test accuracy k=1: {:.1f}%, k=5: {:.1f}%\n", 100 * acc1, 100 * acc5);

  // 5-fold cross-validation on the training images: each fold validates once against the others.
  const int64_t fold = o.num_train / o.folds;
  std::vector<std::vector<double>> acc(ks.size());
  for (int64_t f = 0; f < o.folds; ++f) {
    std::vector<int64_t> tr_idx, val_idx;
    for (int64_t i = 0; i < fold * o.folds; ++i) (i / fold == f ? val_idx : tr_idx).push_back(i);
    const Tensor idx_tr = from_vector(tr_idx), idx_val = from_vector(val_idx);
    std::vector<int64_t> ytr_f, yval_f;
    for (int64_t i : tr_idx) ytr_f.push_back(ytr[static_cast<size_t>(i)]);
    for (int64_t i : val_idx) yval_f.push_back(ytr[static_cast<size_t>(i)]);
    const auto fold_order =
        neighbour_order(no_loops(index_select(xtr, 0, idx_val), index_select(xtr, 0, idx_tr)), ks.back());
    for (size_t k = 0; k < ks.size(); ++k) acc[k].push_back(knn_accuracy(fold_order, ytr_f, yval_f, ks[k]));
  }
  size_t best = 0;
  std::vector<double> means;
  for (size_t k = 0; k < ks.size(); ++k) {
    means.push_back(std::accumulate(acc[k].begin(), acc[k].end(), 0.0) / static_cast<double>(acc[k].size()));
    fmt::print("k = {:3d}: cross-validation accuracy {:.1f}% (folds {})\n", ks[k], 100 * means.back(),
               fmt::join(acc[k], " "));
    if (means.back() > means[best]) best = k;
  }
  const int64_t best_k = ks[best];
  const double best_acc = knn_accuracy(order, ytr, yte, best_k);
  fmt::print("best k = {} by cross-validation: test accuracy {:.1f}%\n", best_k, 100 * best_acc);

  std::vector<plot::Series> series;
  for (int64_t f = 0; f < o.folds; ++f) {
    plot::Series s{fmt::format("fold {}", f + 1), {}, {}};
    for (size_t k = 0; k < ks.size(); ++k) s.x.push_back(static_cast<double>(ks[k])), s.y.push_back(acc[k][f]);
    series.push_back(s);
  }
  plot::Series m{"mean", {}, means};
  for (int64_t k : ks) m.x.push_back(static_cast<double>(k));
  series.insert(series.begin(), m);
  plot::line_chart(dir + "/cross_validation.svg", "kNN: 5-fold cross-validation on k", "k (log scale)",
                   "validation accuracy", series, true);
  write_summary(dir, {{"command", "knn"},
                      {"train_images", o.num_train},
                      {"test_images", o.num_test},
                      {"seconds_two_loops", s2},
                      {"seconds_one_loop", s1},
                      {"seconds_no_loops", s0},
                      {"cpu_seconds_two_loops", c2},
                      {"cpu_seconds_one_loop", c1},
                      {"cpu_seconds_no_loops", c0},
                      {"speedup_no_vs_two_loops", c2 / c0},
                      {"frobenius_one_loop", diff1},
                      {"frobenius_no_loops", diff0},
                      {"test_acc_k1", acc1},
                      {"test_acc_k5", acc5},
                      {"cv_mean_acc", means},
                      {"best_k", best_k},
                      {"test_acc_best_k", best_acc},
                      {"seconds", total.seconds()}});
  return 0;
}

}  // namespace cs231n
