# Finds the Debian-packaged dependencies (installed by third_party/setup.sh). No vendored code.
find_package(Threads REQUIRED)
find_package(Protobuf REQUIRED)
find_package(ONNX REQUIRED CONFIG)          # libonnx-dev: onnx (checker) + onnx_proto
find_package(Eigen3 3.3 REQUIRED NO_MODULE)  # libeigen3-dev
find_package(CLI11 REQUIRED CONFIG)          # libcli11-dev
find_package(nlohmann_json 3 REQUIRED CONFIG)  # nlohmann-json3-dev
find_package(doctest REQUIRED CONFIG)        # doctest-dev
find_package(PkgConfig REQUIRED)
pkg_check_modules(SNDFILE REQUIRED IMPORTED_TARGET sndfile)   # libsndfile1-dev
pkg_check_modules(SOXR REQUIRED IMPORTED_TARGET soxr)         # libsoxr-dev
pkg_check_modules(FFTW3F REQUIRED IMPORTED_TARGET fftw3f)     # libfftw3-dev
pkg_check_modules(FFTW3 REQUIRED IMPORTED_TARGET fftw3)       # libfftw3-dev (double precision: asr front end)
find_package(BLAS)                                            # libopenblas-dev
# libdnnl-dev (GEMM backend). Its CMake config demands OpenCL headers, so import the library.
find_library(ASRC_DNNL_LIBRARY dnnl)
find_path(ASRC_DNNL_INCLUDE oneapi/dnnl/dnnl.h)
if(ASRC_DNNL_LIBRARY AND ASRC_DNNL_INCLUDE AND NOT TARGET DNNL::dnnl)
  add_library(DNNL::dnnl UNKNOWN IMPORTED)
  set_target_properties(DNNL::dnnl PROPERTIES IMPORTED_LOCATION ${ASRC_DNNL_LIBRARY}
                        INTERFACE_INCLUDE_DIRECTORIES ${ASRC_DNNL_INCLUDE})
endif()
