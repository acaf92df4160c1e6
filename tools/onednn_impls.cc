// Times every oneDNN implementation of the study's two large convolution shapes (32->64 on 28x28 and
// 64->64 on 14x14, 3x3, stride 2, batch 64), forward, backward-data and backward-weights, in oneDNN's
// own layouts (format any) or channels-last (NHWC=1): what README's "the fastest of its implementations"
// rests on. Build and run (libdnnl-dev):
//   g++ -O2 -std=c++17 tools/onednn_impls.cc -ldnnl -o /tmp/onednn_impls && OMP_NUM_THREADS=2 /tmp/onednn_impls
// Prints the least of 15 runs per implementation, after 3 warm-ups.
#include <oneapi/dnnl/dnnl.hpp>
#include <chrono>
#include <cstdio>
#include <vector>
#include <string>
#include <cstdlib>
#include <unordered_map>
using namespace dnnl;
using tag = memory::format_tag; using dt = memory::data_type;
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
template <class PD, class P> void timeAll(const char* what, PD pd, engine& eng, stream& s, int kind) {
  for (int i = 0; ; i++) {
    std::string name = pd.impl_info_str();
    // alloc args
    std::unordered_map<int, memory> args;
    auto mk = [&](const memory::desc& d) { return memory(d, eng); };
    if (kind == 0) { args[DNNL_ARG_SRC] = mk(pd.src_desc()); args[DNNL_ARG_WEIGHTS] = mk(pd.weights_desc()); args[DNNL_ARG_DST] = mk(pd.dst_desc()); }
    if (kind == 1) { args[DNNL_ARG_DIFF_DST] = mk(pd.diff_dst_desc()); args[DNNL_ARG_WEIGHTS] = mk(pd.weights_desc()); args[DNNL_ARG_DIFF_SRC] = mk(pd.diff_src_desc()); }
    if (kind == 2) { args[DNNL_ARG_SRC] = mk(pd.src_desc()); args[DNNL_ARG_DIFF_DST] = mk(pd.diff_dst_desc()); args[DNNL_ARG_DIFF_WEIGHTS] = mk(pd.diff_weights_desc()); }
    args[DNNL_ARG_SCRATCHPAD] = mk(pd.scratchpad_desc());
    P p(pd);
    for (int w = 0; w < 3; w++) p.execute(s, args);
    s.wait();
    double best = 1e9;
    for (int r = 0; r < 15; r++) { double t0 = now(); p.execute(s, args); s.wait(); double t = now() - t0; if (t < best) best = t; }
    printf("  %-10s %-40s %.3f ms\n", what, name.c_str(), best * 1e3);
    if (!pd.next_impl()) break;
  }
}
int main() {
  engine eng(engine::kind::cpu, 0); stream s(eng);
  struct G { int C, H, K, st; } gs[] = {{32, 28, 64, 2}, {64, 14, 64, 2}};
  for (auto g : gs) {
    int N = 64, OH = (g.H + 2 - 3) / g.st + 1;
    memory::dims src{N, g.C, g.H, g.H}, wei{g.K, g.C, 3, 3}, dst{N, g.K, OH, OH};
    tag at = getenv("NHWC") ? tag::nhwc : tag::any; memory::desc sA(src, dt::f32, at), wA(wei, dt::f32, tag::any), dA(dst, dt::f32, at);
    memory::dims str{g.st, g.st}, pl{1, 1}, pr{(OH - 1) * g.st + 3 - g.H - 1, (OH - 1) * g.st + 3 - g.H - 1};
    printf("conv %d->%d %dx%d s%d\n", g.C, g.K, g.H, g.H, g.st);
    auto fd = convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, sA, wA, dA, str, pl, pr);
    convolution_forward::primitive_desc fpd(fd, eng);
    timeAll<convolution_forward::primitive_desc, convolution_forward>("fwd", fpd, eng, s, 0);
    auto bd = convolution_backward_data::desc(algorithm::convolution_direct, sA, wA, dA, str, pl, pr);
    convolution_backward_data::primitive_desc bpd(bd, eng, fpd);
    timeAll<convolution_backward_data::primitive_desc, convolution_backward_data>("bwd-data", bpd, eng, s, 1);
    auto wd = convolution_backward_weights::desc(algorithm::convolution_direct, sA, wA, dA, str, pl, pr);
    convolution_backward_weights::primitive_desc wpd(wd, eng, fpd);
    timeAll<convolution_backward_weights::primitive_desc, convolution_backward_weights>("bwd-weight", wpd, eng, s, 2);
  }
}
