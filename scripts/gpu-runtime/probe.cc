// Asks libtensorflow's own loader (tsl::internal::DsoLoader, exported by libtensorflow_framework.so.2)
// to dlopen the CUDA libraries it uses, the way it does on a GPU: its log then says
// "Successfully opened dynamic library libcudnn.so.9" or "Could not load dynamic library ...".
// Without a GPU libtensorflow never gets that far (cuInit fails first), so this is how the runtime
// tree is checked on a machine without one. Prints one line per library and exits 1 if any of the
// user-space libraries (everything but the driver) did not load.
//
// absl::Status is one uintptr_t with a non-trivial destructor (so it is returned through a hidden
// pointer); its OK value is 1 (inlined code 0). StatusOr<void*> adds the pointer. Declared here with
// the same shape, so no absl headers (and no absl ABI version) are involved.
#include <cstdint>
#include <cstdio>
struct StatusOrPtr { std::uintptr_t rep; void* value; ~StatusOrPtr() {} };
namespace tsl { namespace internal { namespace DsoLoader {
StatusOrPtr GetCudaDriverDsoHandle();
StatusOrPtr GetCudaRuntimeDsoHandle();
StatusOrPtr GetCublasDsoHandle();
StatusOrPtr GetCublasLtDsoHandle();
StatusOrPtr GetCufftDsoHandle();
StatusOrPtr GetCusolverDsoHandle();
StatusOrPtr GetCusparseDsoHandle();
StatusOrPtr GetCuptiDsoHandle();
StatusOrPtr GetCudnnDsoHandle();
StatusOrPtr GetNcclDsoHandle();
} } }
using namespace tsl::internal::DsoLoader;
int main() {
  struct Lib { const char* name; StatusOrPtr (*get)(); bool host; };
  const Lib libs[] = {
      {"libcuda.so.1 (driver, from the host)", GetCudaDriverDsoHandle, true},
      {"libcudart.so.12", GetCudaRuntimeDsoHandle, false}, {"libcublas.so.12", GetCublasDsoHandle, false},
      {"libcublasLt.so.12", GetCublasLtDsoHandle, false}, {"libcufft.so.11", GetCufftDsoHandle, false},
      {"libcusolver.so.11", GetCusolverDsoHandle, false}, {"libcusparse.so.12", GetCusparseDsoHandle, false},
      {"libcupti.so.12", GetCuptiDsoHandle, false}, {"libcudnn.so.9", GetCudnnDsoHandle, false},
      {"libnccl.so.2", GetNcclDsoHandle, false},
  };
  int missing = 0;
  for (const Lib& l : libs) {
    StatusOrPtr s = l.get();
    const bool ok = s.rep == 1 && s.value != nullptr;
    std::printf("probe: %-40s %s\n", l.name, ok ? "loaded" : "NOT loaded");
    if (!ok && !l.host) missing++;
  }
  std::fflush(stdout);
  return missing == 0 ? 0 : 1;
}
