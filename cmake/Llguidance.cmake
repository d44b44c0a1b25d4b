# llguidance (crates.io, MIT): the grammar engine behind structured output (JSON schemas,
# regexes, Lark grammars), which llama.cpp and vLLM use too. Cargo builds third_party/llguidance
# (a wrapper crate whose Cargo.lock pins llguidance and every dependency) into a static library
# with its C header; Kinfer links it into the one binary.
#
# The cargo target directory lives outside the checkout, $KINFER_CARGO_TARGET_DIR or
# ~/.cache/kinfer/cargo-target, so clones and CI's warm runs reuse the build: a warm cargo run is
# a freshness check of a fraction of a second. Cargo locks the directory itself, so concurrent
# builds (release and asan, several checkouts) wait for each other instead of clobbering it.

# A build that cannot run cargo (the container image's build stage, which has no Rust toolchain
# and no crates.io) takes the library the host built: KINFER_LLGUIDANCE_DIR names a directory
# holding libkinfer_llguidance.a and llguidance.h, made from the same Cargo.lock.
set(KINFER_LLGUIDANCE_DIR "$ENV{KINFER_LLGUIDANCE_DIR}" CACHE PATH
    "prebuilt llguidance (libkinfer_llguidance.a + llguidance.h); empty: build it with cargo")
if(KINFER_LLGUIDANCE_DIR)
  foreach(_f libkinfer_llguidance.a llguidance.h)
    if(NOT EXISTS ${KINFER_LLGUIDANCE_DIR}/${_f})
      message(FATAL_ERROR "KINFER_LLGUIDANCE_DIR=${KINFER_LLGUIDANCE_DIR} has no ${_f}")
    endif()
  endforeach()
  add_library(llguidance STATIC IMPORTED GLOBAL)
  set_target_properties(llguidance PROPERTIES
    IMPORTED_LOCATION ${KINFER_LLGUIDANCE_DIR}/libkinfer_llguidance.a
    INTERFACE_INCLUDE_DIRECTORIES ${KINFER_LLGUIDANCE_DIR}
    INTERFACE_LINK_LIBRARIES "Threads::Threads;${CMAKE_DL_LIBS};m")
  return()
endif()

find_program(KINFER_CARGO cargo HINTS "$ENV{HOME}/.cargo/bin")
if(NOT KINFER_CARGO)
  message(FATAL_ERROR "cargo not found: run scripts/setup.sh (it installs Rust from Debian when "
                      "the machine has none)")
endif()
if(NOT "$ENV{KINFER_CARGO_TARGET_DIR}" STREQUAL "")
  set(KINFER_CARGO_TARGET_DIR "$ENV{KINFER_CARGO_TARGET_DIR}")
else()
  set(KINFER_CARGO_TARGET_DIR "$ENV{HOME}/.cache/kinfer/cargo-target")
endif()

set(_llg_dir ${PROJECT_SOURCE_DIR}/third_party/llguidance)
set(_llg_out ${KINFER_CARGO_TARGET_DIR}/release)
set(KINFER_LLGUIDANCE_LIB ${_llg_out}/libkinfer_llguidance.a)
# The crate's build script puts its llguidance.h beside the library; CMake wants the include
# directory to exist at configure time.
file(MAKE_DIRECTORY ${_llg_out})

get_filename_component(_cargo_bin_dir ${KINFER_CARGO} DIRECTORY)
add_custom_target(llguidance_build
  COMMAND ${CMAKE_COMMAND} -E env "PATH=${_cargo_bin_dir}:$ENV{PATH}"
          ${KINFER_CARGO} build --release --locked --quiet
          --manifest-path ${_llg_dir}/Cargo.toml --target-dir ${KINFER_CARGO_TARGET_DIR}
  BYPRODUCTS ${KINFER_LLGUIDANCE_LIB} ${_llg_out}/llguidance.h
  COMMENT "cargo: llguidance (a no-op when ${KINFER_CARGO_TARGET_DIR} is fresh)"
  USES_TERMINAL
  VERBATIM)

add_library(llguidance STATIC IMPORTED GLOBAL)
set_target_properties(llguidance PROPERTIES
  IMPORTED_LOCATION ${KINFER_LLGUIDANCE_LIB}
  INTERFACE_INCLUDE_DIRECTORIES ${_llg_out}
  INTERFACE_LINK_LIBRARIES "Threads::Threads;${CMAKE_DL_LIBS};m")
add_dependencies(llguidance llguidance_build)
