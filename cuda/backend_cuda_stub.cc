// rnnkern — the cuda backend's entry points in a build without nvcc: each says why.
#include <stdexcept>

#include "gpu_api.h"
#include "plan.h"

namespace rnnkern {
namespace gpu_cuda {

namespace {
[[noreturn]] void unavailable() {
  throw std::runtime_error(
      "rnnkern cuda: built without CUDA (nvcc not found or RNNKERN_CUDA=OFF)");
}

std::unique_ptr<Workspace> forward(const Backend&, const RnnConfig&, const LayerArgs&,
                                   const Packed*) {
  unavailable();
}
void backward(const Backend&, const Workspace&, int, const GradArgs&, const Packed*) {
  unavailable();
}
const Backend kBackend = {"cuda", true, forward, backward, nullptr, nullptr};
}  // namespace

const Backend& backend() { return kBackend; }
size_t pool_bytes() { return 0; }
long persistent_count() { return 0; }
long cluster_count() { return 0; }
long push_count() { return 0; }
long flag_count() { return 0; }
void set_plan(const std::string& plan) { parse_plan(plan); }
std::string plan() { return "auto"; }
void set_tune(const std::string& mode) { parse_tune(mode); }
std::string tune() { return "off"; }
long tuning_count() { return 0; }
std::vector<std::string> tuned_plans() { return {}; }
void clear_tuned() {}
void load_tuned(const std::vector<std::string>&, const std::string&) {}
std::string device_key() { unavailable(); }
long graph_reinstantiation_count() { return 0; }
void clear_graphs() {}
void set_gemm(const std::string& kind) { parse_gemm(kind); }
std::string gemm_kind() { return "auto"; }
long mma_gemm_count(int) { return 0; }
void mma_probe_run(const float*, const float*, const float*, float*, float*, const float*,
                   const float*, float*) {
  unavailable();
}
double micro_bench(const std::string&, int, int) { unavailable(); }
void free_pool() {}
void stream_synchronize(uintptr_t) { unavailable(); }
void set_graphs(bool) {}
bool graphs() { return false; }
long graph_count() { return 0; }
long graph_update_count() { return 0; }
void* device_alloc(size_t) { unavailable(); }
void device_free(void*) {}
void device_copy(void*, const void*, size_t, int) { unavailable(); }
bool device_accessible(const void*, size_t) { return false; }
int device_ordinal() { return 0; }
long host_transfer_count() { return 0; }
void elementwise(int, int64_t, float*, const float*, const float*, float, float, uintptr_t) {
  unavailable();
}
double sum_squares(int64_t, const float*, uintptr_t) { unavailable(); }
void elementwise_program(int64_t, const EwSteps&, uintptr_t) { unavailable(); }
int max_program_steps() { return 0; }
int max_program_arrays() { return 0; }

}  // namespace gpu_cuda
}  // namespace rnnkern
