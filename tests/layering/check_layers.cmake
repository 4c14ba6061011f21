# check_layers.cmake: fails when a product folder includes a header of a
# folder it may not depend on (docs/architecture.md, "Layers").
#
#   cmake -DSOURCE_DIR=/path/to/repo -P tests/layering/check_layers.cmake
#
# Every `#include "x/..."` in a .h or .cc file under a product folder is
# checked against that folder's allowed list below. Generated protobuf
# headers (understudy/v1/..., envoy/..., opentelemetry/...) count as proto/.
# Includes in angle brackets (system and third-party headers) are not
# checked. Prints one line per violation and exits non-zero if any.
cmake_minimum_required(VERSION 3.25)
if(NOT SOURCE_DIR)
  message(FATAL_ERROR "usage: cmake -DSOURCE_DIR=<repo> -P check_layers.cmake")
endif()

# Each product folder and the folders it may include (itself included).
# Adapters (shadow, telemetry, metrics, report) do not include each other;
# the Envoy driver is a stand-in for Envoy and knows only the protos.
set(allowed_common    common)
set(allowed_proto     proto)
set(allowed_encoding  common proto encoding)
set(allowed_compare   common proto compare)
set(allowed_translate common proto translate)
set(allowed_rollout   common proto rollout)
set(allowed_drift     common proto drift)
set(allowed_storage   common proto encoding compare rollout storage)
set(allowed_coordination common proto rollout coordination)
set(allowed_shadow    common proto encoding compare translate rollout storage shadow)
set(allowed_telemetry common proto encoding compare rollout storage telemetry)
set(allowed_metrics   common proto encoding compare rollout drift storage metrics)
set(allowed_report    common proto encoding compare rollout drift storage report)
set(allowed_sidecar   common proto encoding compare translate rollout drift storage coordination shadow
                      telemetry metrics report sidecar)
set(allowed_tools     common proto tools)
set(allowed_cli       common proto encoding compare translate rollout drift storage coordination shadow
                      telemetry metrics report sidecar tools cli)
set(product_folders common proto encoding compare translate rollout drift storage coordination shadow
                    telemetry metrics report sidecar tools cli)
# Top-level names an include may start with that belong to this repository
# (or to its generated protos).
set(known_roots ${product_folders} tests bench examples understudy envoy opentelemetry etcd)

set(violations 0)
foreach(folder ${product_folders})
  if(NOT IS_DIRECTORY "${SOURCE_DIR}/${folder}")
    continue()
  endif()
  file(GLOB_RECURSE sources RELATIVE "${SOURCE_DIR}"
       "${SOURCE_DIR}/${folder}/*.h" "${SOURCE_DIR}/${folder}/*.cc")
  list(SORT sources)
  foreach(source ${sources})
    file(STRINGS "${SOURCE_DIR}/${source}" lines REGEX "^[ \t]*#[ \t]*include[ \t]*\"")
    foreach(line ${lines})
      string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*\"([^\"]*)\".*$" "\\1" path "${line}")
      string(REGEX REPLACE "/.*$" "" root "${path}")
      if(NOT root IN_LIST known_roots OR path STREQUAL root)
        continue()  # a system header in quotes, or a file beside the source
      endif()
      if(root STREQUAL "understudy" OR root STREQUAL "envoy" OR root STREQUAL "opentelemetry" OR
         root STREQUAL "etcd")
        set(root proto)
      endif()
      if(NOT root IN_LIST allowed_${folder})
        string(REPLACE ";" " " list_text "${allowed_${folder}}")
        message("${source}: includes ${path}, but ${folder}/ may include only: ${list_text}")
        math(EXPR violations "${violations} + 1")
      endif()
    endforeach()
  endforeach()
endforeach()

if(violations GREATER 0)
  message(FATAL_ERROR "layering: ${violations} include(s) point up or across the layers")
endif()
message("layering ok")
