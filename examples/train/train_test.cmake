# Tests of tapegrad-train that need more than one run or a generated input, as `cmake -P` scripts:
#
#   cmake -DTRAIN=<tapegrad-train> -DMODE=<mode> -DWORK=<scratch dir> -P train_test.cmake
#
# MODE fashion_mnist: a short Fashion-MNIST run exits with 0 and prints every part of the report.
# MODE deterministic: two runs with the same options (2 threads) must print the same per-epoch
#   losses and accuracies, and write the same metrics apart from the timing columns.
# MODE csv: regression and classification on CSV files generated here, and a malformed CSV, whose
#   error must name the file, the line and the column.
cmake_minimum_required(VERSION 3.25)
foreach(v TRAIN MODE WORK)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "train_test.cmake: -D${v}=... is required")
  endif()
endforeach()
file(MAKE_DIRECTORY "${WORK}")

# Runs tapegrad-train with the given arguments (and no plot unless they ask for one); stores stdout
# in <out_var>, fails on a non-zero exit.
function(train out_var)
  if("--plot" IN_LIST ARGN)
    execute_process(COMMAND "${TRAIN}" --progress off ${ARGN}
                    WORKING_DIRECTORY "${WORK}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  else()
    execute_process(COMMAND "${TRAIN}" --progress off --plot "" ${ARGN}
                    WORKING_DIRECTORY "${WORK}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  endif()
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "tapegrad-train ${ARGN} exited with ${rc}:\n${out}\n${err}")
  endif()
  set(${out_var} "${out}" PARENT_SCOPE)
endfunction()

# The per-epoch lines without their timing ("  2.31s  25974 samples/s"), and the final accuracy line
# without its time.
function(figures text out_var)
  string(REGEX MATCHALL "epoch [0-9]+/[0-9]+  loss [^\n]*" lines "${text}")
  set(kept "")
  foreach(line IN LISTS lines)
    string(REGEX REPLACE "  [0-9.]+s  [0-9]+ samples/s$" "" line "${line}")
    list(APPEND kept "${line}")
  endforeach()
  string(REGEX MATCH "test (accuracy|mse) [^(]*" final "${text}")
  if(NOT final)
    message(FATAL_ERROR "no final 'test accuracy' or 'test mse' line in:\n${text}")
  endif()
  list(APPEND kept "${final}")
  set(${out_var} "${kept}" PARENT_SCOPE)
endfunction()

# A metrics CSV without the seconds and samples_per_second columns.
function(metrics_without_timing file out_var)
  file(STRINGS "${file}" rows)
  set(kept "")
  foreach(row IN LISTS rows)
    string(REPLACE "," ";" cells "${row}")
    list(REMOVE_AT cells 5 6)
    list(APPEND kept "${cells}")
  endforeach()
  set(${out_var} "${kept}" PARENT_SCOPE)
endfunction()

if(MODE STREQUAL "fashion_mnist")
  train(out --train-limit 3000 --test-limit 1000 --epochs 2 --metrics test_train.csv --plot test_train.png)
  set(report "using 3000 training and 1000 test samples[^\n]*\n.*epoch 1/2  loss [0-9.]+  acc [0-9.]+  test_loss [0-9.]+  test_acc [0-9.]+  [0-9.]+s  [0-9]+ samples/s\nepoch 2/2 .*test accuracy 0[.][6-9][0-9]+ .*confusion matrix [(]rows: true class[)]\n.*dead units over the last epoch.*metrics: test_train.csv")
  if(NOT out MATCHES "${report}")
    message(FATAL_ERROR "the report lacks a part (expected /${report}/):\n${out}")
  endif()
  file(STRINGS "${WORK}/test_train.csv" rows)
  list(LENGTH rows n)
  if(NOT n EQUAL 3)
    message(FATAL_ERROR "test_train.csv: expected a header and 2 epochs, got ${n} lines")
  endif()
  message(STATUS "the short Fashion-MNIST run reports everything")

elseif(MODE STREQUAL "deterministic")
  set(options --train-limit 3000 --test-limit 1000 --epochs 3 --threads 2 --seed 7 --layers 64 32)
  train(first ${options} --metrics first.csv)
  train(second ${options} --metrics second.csv)
  figures("${first}" a)
  figures("${second}" b)
  list(LENGTH a epochs)
  if(NOT epochs EQUAL 4)
    message(FATAL_ERROR "expected 3 epoch lines and the test accuracy, got '${a}' from:\n${first}")
  endif()
  if(NOT a STREQUAL b)
    message(FATAL_ERROR "two runs with the same options differ:\n${a}\n---\n${b}")
  endif()
  metrics_without_timing("${WORK}/first.csv" ma)
  metrics_without_timing("${WORK}/second.csv" mb)
  if(NOT ma STREQUAL mb)
    message(FATAL_ERROR "the metrics of two runs with the same options differ:\n${ma}\n---\n${mb}")
  endif()
  # A different seed must give different figures (the check above could not fail otherwise).
  train(third --train-limit 3000 --test-limit 1000 --epochs 3 --threads 2 --seed 8 --layers 64 32)
  figures("${third}" c)
  if(a STREQUAL c)
    message(FATAL_ERROR "--seed 7 and --seed 8 gave the same figures:\n${a}")
  endif()
  message(STATUS "same options, same figures:\n${a}")

elseif(MODE STREQUAL "csv")
  # 400 rows of two features a, b in 0..19; y = 3a - 2b + 1 exactly, class = a > b.
  set(regression "a,b,y\n")
  set(classes "a,b,label\n")
  foreach(i RANGE 399)
    math(EXPR a "${i} % 20")
    math(EXPR b "(${i} / 20 + 7 * ${i}) % 20")
    math(EXPR y "3 * ${a} - 2 * ${b} + 1")
    if(a GREATER b)
      set(label 1)
    else()
      set(label 0)
    endif()
    string(APPEND regression "${a},${b},${y}\n")
    string(APPEND classes "${a},${b},${label}\n")
  endforeach()
  file(WRITE "${WORK}/regression.csv" "${regression}")
  file(WRITE "${WORK}/classes.csv" "${classes}")

  train(out --csv regression.csv --target y --task regression --layers 16 --epochs 60 --batch-size 32 --lr 0.01)
  string(REGEX MATCH "test mse ([0-9.e+-]+)" _ "${out}")
  if(NOT CMAKE_MATCH_1)
    message(FATAL_ERROR "no 'test mse' line in:\n${out}")
  endif()
  # The target's variance is about 430 (y in [-37, 58]); a fitted model is far below it.
  if(CMAKE_MATCH_1 GREATER 20)
    message(FATAL_ERROR "regression on a linear target: test mse ${CMAKE_MATCH_1}, expected < 20:\n${out}")
  endif()

  train(out --csv classes.csv --target label --layers 16 --epochs 40 --batch-size 32 --lr 0.01)
  if(NOT out MATCHES "2 classes" OR NOT out MATCHES "test accuracy 0[.]9[0-9]+|test accuracy 1[.]0+")
    message(FATAL_ERROR "classification of a > b: expected 2 classes and test accuracy >= 0.9:\n${out}")
  endif()

  file(WRITE "${WORK}/broken.csv" "a,b,y\n1,2,3\n4,x,6\n")
  execute_process(COMMAND "${TRAIN}" --progress off --plot "" --csv broken.csv --target y
                  WORKING_DIRECTORY "${WORK}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(rc EQUAL 0 OR NOT err MATCHES "broken[.]csv:3:2: 'x' is not a number [(]column \"b\"[)]")
    message(FATAL_ERROR "a malformed CSV: expected a failure naming broken.csv:3:2 and column b, got ${rc}:\n${out}\n${err}")
  endif()
  message(STATUS "CSV regression, classification and a malformed file behave")

else()
  message(FATAL_ERROR "train_test.cmake: unknown MODE '${MODE}'")
endif()
