# Copyright 2026 eigen_depth_ros contributors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""
Obstacle metrics on hand-made scenes: a flat road and car-sized boxes, ray-cast exactly.

The camera is KITTI's (1242x375, fx = fy = 721.5, cx = 609.6, cy = 172.9) 1.65 m above the
road, looking level along z.
"""
import math
import warnings

from eigen_depth_ros.core.obstacles import (add_counts, cloud_obstacle_counts,
                                            depth_obstacle_counts, flat_scores, match_cells,
                                            ObstacleGridSpec, occupied_cells, points_from_depth,
                                            points_in_image_area, scores_from_counts,
                                            zero_counts)
import numpy as np
import pytest

HEIGHT = 1.65
K = (721.5, 721.5, 609.6, 172.9)
SIZE = (1242, 375)
# A van, 2 m wide, 2 m tall and 4 m long, standing on the road straight ahead at 6 m. It is
# taller than the camera, which sees its back only: a car 1.5 m tall would show its roof too.
CAR = ((-1.0, 1.0), (0.0, 2.0), (6.0, 10.0))


def render(boxes=(), road=True):
    """
    Ray-cast depth (camera z) of a road plane and boxes; inf where nothing is hit.

    A box is ``((x0, x1), (h0, h1), (z0, z1))``: x right, height above the road, z forward.
    """
    fx, fy, cx, cy = K
    u, v = np.meshgrid(np.arange(SIZE[0]), np.arange(SIZE[1]))
    ray = np.stack([(u - cx) / fx, (v - cy) / fy, np.ones(u.shape)], axis=-1)  # z = 1
    depth = np.full(u.shape, np.inf)
    if road:
        with np.errstate(divide='ignore'):
            depth = np.where(ray[..., 1] > 0, HEIGHT / ray[..., 1], np.inf)
    for (x0, x1), (h0, h1), (z0, z1) in boxes:
        low = np.array([x0, HEIGHT - h1, z0])
        high = np.array([x1, HEIGHT - h0, z1])
        with np.errstate(divide='ignore', invalid='ignore'):
            t0, t1 = low / ray, high / ray                      # slab method
        enter = np.nanmax(np.minimum(t0, t1), axis=-1)
        leave = np.nanmin(np.maximum(t0, t1), axis=-1)
        hit = (enter <= leave) & (enter > 0)
        depth = np.where(hit & (enter < depth), enter, depth)
    return depth


def moved(box, dx=0.0, dz=0.0):
    (x0, x1), heights, (z0, z1) = box
    return (x0 + dx, x1 + dx), heights, (z0 + dz, z1 + dz)


def scores_of(pred_depth, true_depth, spec=ObstacleGridSpec()):
    return scores_from_counts(depth_obstacle_counts(pred_depth, true_depth, *K, HEIGHT, spec))


def cloud(depth):
    return points_from_depth(depth, *K)


def test_points_from_depth_is_the_pinhole_inverse():
    fx, fy, cx, cy = 100.0, 50.0, 1.5, 0.5
    depth = np.array([[2.0, np.nan, 4.0],
                      [np.inf, 0.0, -1.0]])
    points = points_from_depth(depth, fx, fy, cx, cy)
    assert points.dtype == np.float32 and points.shape == (2, 3)
    # row 0, column 0: u = 0, v = 0; row 0, column 2: u = 2, v = 0
    np.testing.assert_allclose(points, [[(0 - cx) * 2 / fx, (0 - cy) * 2 / fy, 2.0],
                                        [(2 - cx) * 4 / fx, (0 - cy) * 4 / fy, 4.0]])
    assert points_from_depth(np.full((3, 3), np.nan), fx, fy, cx, cy).shape == (0, 3)
    # a ray-cast road comes back as the road plane
    road = cloud(render())
    assert len(road) > 100_000
    np.testing.assert_allclose(road[:, 1], HEIGHT, rtol=1e-6)


def test_occupied_cells_height_band_and_min_points():
    points = np.array([[0.1, HEIGHT - 0.2, 5.0],    # below 0.3 m: road clutter
                       [0.1, HEIGHT - 0.3, 5.0],    # at 0.3 m: an obstacle
                       [0.2, HEIGHT - 2.5, 5.2],    # at 2.5 m, same cell
                       [0.2, HEIGHT - 2.6, 5.0],    # above 2.5 m: passes under
                       [-0.7, HEIGHT - 1.0, 7.9],
                       [-0.7, HEIGHT - 1.0, -3.0]])  # behind the camera
    np.testing.assert_array_equal(occupied_cells(points, HEIGHT), [[-2, 15], [0, 10]])
    np.testing.assert_array_equal(
        occupied_cells(points, HEIGHT, ObstacleGridSpec(min_points=2)), [[0, 10]])
    assert occupied_cells(np.zeros((0, 3)), HEIGHT).shape == (0, 2)


def test_identical_clouds_and_depth_maps_score_one():
    scene = render([CAR, moved(CAR, dx=-5.0, dz=6.0)])
    for scores in (scores_of(scene, scene),
                   scores_from_counts(cloud_obstacle_counts(cloud(scene), cloud(scene),
                                                            HEIGHT))):
        assert set(scores) == {'10m', '20m'}
        for key in scores:
            assert scores[key]['truth'] > 0
            assert scores[key]['recall'] == scores[key]['precision'] == \
                scores[key]['f1'] == 1.0
    assert scores['20m']['truth'] > scores['10m']['truth']   # the second car is at 12 m


@pytest.mark.parametrize('shift', [{'dx': 3.0}, {'dz': 3.0}])
def test_a_car_moved_three_metres_is_missed(shift):
    scores = scores_of(render([moved(CAR, **shift)]), render([CAR]))
    for key in ('10m', '20m'):
        assert scores[key]['truth'] > 0 and scores[key]['pred'] > 0
        assert scores[key]['recall'] == 0.0 and scores[key]['precision'] == 0.0
        assert scores[key]['f1'] == 0.0


def test_a_road_predicted_too_near_rises_into_phantom_obstacles():
    # The true road alone is no obstacle at all.
    assert occupied_cells(cloud(render()), HEIGHT).shape == (0, 2)
    truth = render([CAR])
    scores = scores_of(0.8 * truth, truth)
    # 0.8 x 1.65 m: the road is seen 0.33 m above itself, inside the obstacle band
    assert len(occupied_cells(cloud(0.8 * render()), HEIGHT)) > 100
    for key in ('10m', '20m'):
        assert scores[key]['pred'] > 5 * scores[key]['truth']
        assert scores[key]['precision'] < 0.1
    unscaled = scores_of(truth, truth)
    assert unscaled['20m']['pred'] == unscaled['20m']['truth'] == len(
        occupied_cells(cloud(truth), HEIGHT))


def test_a_shift_within_the_tolerance_still_matches():
    spec = ObstacleGridSpec()
    scores = scores_of(render([moved(CAR, dx=0.4)]), render([CAR]), spec)
    assert scores['10m']['f1'] == scores['20m']['f1'] == 1.0
    # the tolerance grows with range: 1 m is within it at 16 m (1.3 m), not at 6 m (0.8 m)
    far_car = moved(CAR, dz=10.0)
    far = scores_of(render([moved(far_car, dz=1.0)]), render([far_car]), spec)
    assert far['20m']['truth'] > 0 and far['20m']['f1'] == 1.0
    near = scores_of(render([moved(CAR, dz=1.0)]), render([CAR]), spec)
    assert near['10m']['recall'] == 0.0


def test_match_cells_counts_each_range_and_tolerance_by_the_tested_cell():
    spec = ObstacleGridSpec(cell=1.0, tolerance=1.0, tolerance_per_m=0.1)
    # centres (0.5, 5.5) ~ 5.5 m and (0.5, 15.5) ~ 15.5 m
    truth = np.array([[0, 5], [0, 15]])
    # 2 m beside the near one (tolerance 1.55 m: no), 2 m beside the far one (2.55 m: yes)
    pred = np.array([[2, 5], [2, 15]])
    counts = match_cells(pred, truth, spec)
    assert counts['10m'] == {'tp_truth': 0, 'truth': 1, 'tp_pred': 0, 'pred': 1}
    assert counts['20m'] == {'tp_truth': 1, 'truth': 2, 'tp_pred': 1, 'pred': 2}


def test_scores_edge_cases_and_micro_average():
    empty = scores_from_counts(zero_counts())
    assert all(math.isnan(empty[key][name]) for key in empty
               for name in ('recall', 'precision', 'f1'))
    none_right = scores_from_counts({'10m': {'tp_truth': 0, 'truth': 4, 'tp_pred': 0,
                                             'pred': 2}})['10m']
    assert none_right['recall'] == none_right['precision'] == none_right['f1'] == 0.0
    assert none_right['truth'] == 4   # the counts stay beside the scores
    no_prediction = scores_from_counts({'10m': {'tp_truth': 0, 'truth': 4, 'tp_pred': 0,
                                                'pred': 0}})['10m']
    assert no_prediction['recall'] == 0.0 and math.isnan(no_prediction['precision'])
    assert math.isnan(no_prediction['f1'])
    # a frame with 1 of 1 found and one with 0 of 3: micro-average 1/4, not the mean 1/2
    total = add_counts({}, {'10m': {'tp_truth': 1, 'truth': 1, 'tp_pred': 1, 'pred': 1}})
    total = add_counts(total, {'10m': {'tp_truth': 0, 'truth': 3, 'tp_pred': 0, 'pred': 1}})
    scores = scores_from_counts(total)
    assert scores['10m']['recall'] == 0.25 and scores['10m']['precision'] == 0.5
    assert scores['10m']['f1'] == pytest.approx(2 * 0.25 * 0.5 / 0.75)
    assert flat_scores(scores) == {'obstacle_f1_10m': scores['10m']['f1'],
                                   'obstacle_recall_10m': 0.25,
                                   'obstacle_precision_10m': 0.5}


def test_valid_mask_limits_both_clouds():
    truth = render([CAR, moved(CAR, dx=-5.0)])
    valid = np.zeros(truth.shape, dtype=bool)
    valid[:, SIZE[0] // 2:] = True           # right half only: the left car is not scored
    pred = render([CAR])
    masked = scores_from_counts(depth_obstacle_counts(pred, truth, *K, HEIGHT, valid=valid))
    assert masked['10m']['recall'] == 1.0 and masked['10m']['precision'] == 1.0
    assert scores_of(pred, truth)['10m']['recall'] < 1.0


def one_line_error(call, *args, **kwargs):
    with pytest.raises(ValueError) as info:
        call(*args, **kwargs)
    assert '\n' not in str(info.value) and str(info.value)
    return str(info.value)


def test_bad_inputs_raise_one_line_value_errors():
    depth = render([CAR])
    points = cloud(depth)
    assert 'camera height' in one_line_error(occupied_cells, points, math.nan)
    assert 'camera height' in one_line_error(depth_obstacle_counts, depth, depth, *K,
                                             math.nan)
    assert 'differ in shape' in one_line_error(depth_obstacle_counts, depth, depth[1:], *K,
                                               HEIGHT)
    for bad in ((math.nan, 721.5, 609.6, 172.9), (0.0, 721.5, 609.6, 172.9),
                (721.5, -1.0, 609.6, 172.9), (721.5, 721.5, math.inf, 172.9)):
        assert 'intrinsics' in one_line_error(points_from_depth, depth, *bad)
    with_nan = points.copy()
    with_nan[10, 0] = np.nan
    assert 'non-finite' in one_line_error(occupied_cells, with_nan, HEIGHT)
    assert 'non-finite' in one_line_error(cloud_obstacle_counts, points, with_nan, HEIGHT)
    assert 'cell size' in one_line_error(ObstacleGridSpec, cell=0.0)
    assert 'min_height' in one_line_error(ObstacleGridSpec, min_height=2.5, max_height=2.5)
    assert 'ranges' in one_line_error(ObstacleGridSpec, ranges=())
    assert 'ranges' in one_line_error(ObstacleGridSpec, ranges=(10.0, math.nan))
    assert 'tolerance' in one_line_error(ObstacleGridSpec, tolerance=-0.1)
    assert 'min_points' in one_line_error(ObstacleGridSpec, min_points=0)
    assert 'cells' in one_line_error(match_cells, np.zeros((3, 2)), np.zeros((1, 2), int))


def test_points_in_image_area_keeps_every_point_on_a_kept_pixel():
    # camera fx = fy = 10, cx = 2, cy = 1 and a 5x3 image whose pixel (row 1, column 3) is
    # not in the area; a point lands on (round(10 x / z + 2), round(10 y / z + 1)).
    area = np.ones((3, 5), dtype=bool)
    area[1, 3] = False
    points = np.array([
        [0.0, 0.0, 2.0],       # column 2, row 1: kept
        [0.0, 0.0, 7.0],       # the same pixel, farther: kept too (not only the nearest)
        [0.2, 0.1, 1.0],       # column 4, row 2, the last pixel: kept
        [-0.2, -0.1, 1.0],     # column 0, row 0, the first pixel: kept
        [0.4, 0.2, 2.0],       # column 4, row 2 again, at 2 m: kept
        [0.26, 0.0, 1.0],      # column 5: right of the image
        [0.0, 0.16, 1.0],      # row 3: below the image
        [-0.26, 0.0, 1.0],     # column -1
        [0.0, -0.16, 1.0],     # row -1
        [0.0, 0.0, -1.0],      # behind the camera
        [0.0, 0.0, 0.001],     # at min_depth (1 mm): not beyond it
        [0.1, 0.0, 1.0],       # column 3, row 1: outside the area
    ])
    kept = points_in_image_area(points, 10.0, 10.0, 2.0, 1.0, area)
    np.testing.assert_array_equal(kept, points[:5])
    np.testing.assert_array_equal(
        points_in_image_area(points, 10.0, 10.0, 2.0, 1.0, area, min_depth=1.5),
        points[[0, 1, 4]])


def test_grid_spec_edges():
    assert ObstacleGridSpec(ranges=[5.0, 0.5]).ranges == (5.0, 0.5)   # stored as a tuple
    assert ObstacleGridSpec(tolerance=0.0, tolerance_per_m=0.0).match_distance(
        np.array([0.0, 10.0])).tolist() == [0.0, 0.0]
    for ranges in ((math.inf,), (0.0,), (10.0, -1.0)):
        with pytest.raises(ValueError, match='ranges must be positive metres'):
            ObstacleGridSpec(ranges=ranges)


def test_counts_start_at_zero_and_add_per_key():
    assert zero_counts(ObstacleGridSpec(ranges=(5.0, 12.5))) == {
        '5m': {'tp_truth': 0, 'truth': 0, 'tp_pred': 0, 'pred': 0},
        '12.5m': {'tp_truth': 0, 'truth': 0, 'tp_pred': 0, 'pred': 0}}
    total = {'10m': {'tp_truth': 2, 'truth': 5, 'tp_pred': 3, 'pred': 4}}
    frame = {'10m': {'tp_truth': 1, 'truth': 1, 'tp_pred': 1}, '20m': {'truth': 6}}
    assert add_counts(total, frame) == {
        '10m': {'tp_truth': 3, 'truth': 6, 'tp_pred': 4, 'pred': 4},
        '20m': {'tp_truth': 0, 'truth': 6, 'tp_pred': 0, 'pred': 0}}
    assert add_counts(frame, total) == add_counts(total, frame)
    assert total == {'10m': {'tp_truth': 2, 'truth': 5, 'tp_pred': 3, 'pred': 4}}  # unchanged


def test_height_band_and_forward_limits_are_inclusive_where_documented():
    # camera 2 m up, band 0.5 .. 1.5 m above the road, 0.5 m cells: binary-exact values
    spec = ObstacleGridSpec(min_height=0.5, max_height=1.5)
    points = np.array([[0.1, 1.5, 0.6],      # height 0.5: the lowest obstacle point
                       [1.1, 0.5, 0.6],      # height 1.5: the highest
                       [2.1, 1.75, 0.6],     # 0.25: below the band
                       [3.1, 0.25, 0.6],     # 1.75: above it
                       [4.1, 1.0, 0.0]])     # z = 0: not in front of the camera
    np.testing.assert_array_equal(occupied_cells(points, 2.0, spec), [[0, 1], [2, 1]])
    # a camera half a metre up is a camera; none at 0 m or at an infinite height
    assert occupied_cells(np.array([[0.1, 0.0, 1.0]]), 0.5, spec).tolist() == [[0, 2]]
    for height in (0.0, math.inf):
        assert 'camera height' in one_line_error(occupied_cells, points, height)


def test_cells_too_far_for_their_key_are_left_out():
    # index 2**31 - 1 fits the 32 bits of a key, 2**31 does not (about 1e6 km at 0.5 m)
    points = np.array([[(2 ** 31 - 1 + 0.5) * 0.5, 0.65, 1.0],
                       [(2 ** 31 + 0.5) * 0.5, 0.65, 1.0],
                       [0.1, 0.65, -(2 ** 31 - 0.5) * 0.5]])    # behind: never a cell
    assert occupied_cells(points, HEIGHT).tolist() == [[2 ** 31 - 1, 2]]


def test_points_from_depth_keeps_near_points_and_drops_overflow_quietly():
    depth = np.array([[0.5, 1e39, 2.0]])     # 1e39 m does not fit float32
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        points = points_from_depth(depth, 1.0, 1.0, 0.0, 0.0)
    assert points.tolist() == [[0.0, 0.0, 0.5], [4.0, 0.0, 2.0]]
    # sub-pixel focal lengths are valid; zero ones are not
    assert points_from_depth(np.array([[1.0]]), 0.5, 0.5, -1.0, -1.0).tolist() == \
        [[2.0, 2.0, 1.0]]
    assert 'intrinsics' in one_line_error(points_from_depth, depth, 1.0, 0.0, 0.0, 0.0)
    assert one_line_error(points_from_depth, np.ones((2, 2, 1)), *K) == \
        'expected an (H, W) depth image, got shape (2, 2, 1)'


def test_clouds_of_the_wrong_shape_or_with_nan_are_named():
    assert occupied_cells(np.zeros(0), HEIGHT).shape == (0, 2)          # no point at all
    assert one_line_error(occupied_cells, np.zeros((4, 2)), HEIGHT) == \
        'expected an (N, 3) point cloud, got shape (4, 2)'
    assert one_line_error(occupied_cells, np.array([[0.0, np.nan, 1.0]]), HEIGHT) == \
        'point cloud has non-finite coordinates; drop NaN points first'
    assert one_line_error(match_cells, np.zeros((3, 3), int), np.zeros((1, 2), int)) == \
        'expected (M, 2) integer cells, got int64 (3, 3)'


def test_match_cells_edges():
    spec = ObstacleGridSpec(cell=1.0, tolerance=1.0, tolerance_per_m=0.0)
    # one true cell, one prediction on it; then none; then an empty list of cells
    one = np.array([[0, 5]])
    assert match_cells(one, one, spec)['10m'] == {'tp_truth': 1, 'truth': 1, 'tp_pred': 1,
                                                  'pred': 1}
    for nothing in (np.zeros((0, 2), int), []):
        assert match_cells(nothing, one, spec)['10m'] == {'tp_truth': 0, 'truth': 1,
                                                          'tp_pred': 0, 'pred': 0}
    # a cell's range is that of its centre: (6.5, 7.5) is 9.92 m, (0.5, 10.5) 10.51 m
    truth = np.array([[6, 7], [0, 10]])
    assert match_cells(truth, truth, spec)['10m']['truth'] == 1
    # a cell exactly at a scored range is inside it, with its partner
    exact = ObstacleGridSpec(cell=1.0, ranges=(float(np.hypot(0.5, 9.5)),))
    key = f'{np.hypot(0.5, 9.5):g}m'
    assert match_cells(np.array([[0, 9]]), np.array([[0, 9]]), exact)[key] == \
        {'tp_truth': 1, 'truth': 1, 'tp_pred': 1, 'pred': 1}


def test_a_neighbour_exactly_at_the_tolerance_matches():
    # 0.3 m cells: the centres 0.15 and 0.45 differ by 0.30000000000000004 in binary
    spec = ObstacleGridSpec(cell=0.3, tolerance=0.3, tolerance_per_m=0.0)
    counts = match_cells(np.array([[1, 10]]), np.array([[0, 10]]), spec)
    assert counts['10m'] == {'tp_truth': 1, 'truth': 1, 'tp_pred': 1, 'pred': 1}


def test_the_spec_reaches_every_step_of_the_counts():
    # one point 1 m above the road: an obstacle by default, not for a 1.5 .. 2.5 m band
    spec = ObstacleGridSpec(min_height=1.5, max_height=2.5, ranges=(5.0,))
    points = np.array([[0.2, HEIGHT - 1.0, 3.0]], np.float32)
    nothing = {'5m': {'tp_truth': 0, 'truth': 0, 'tp_pred': 0, 'pred': 0}}
    assert cloud_obstacle_counts(points, points, HEIGHT, spec) == nothing
    assert cloud_obstacle_counts(points, np.zeros((0, 3)), HEIGHT)['10m']['pred'] == 1
    # a depth pixel of a camera with fx = fy = 10, cx = cy = 0: pixel (1, 1) at 3 m is
    # (1 - 0) * 3 / 10 = 0.3 m right and down, 1.35 m above the road
    depth = np.full((2, 2), np.nan)
    depth[1, 1] = 3.0
    assert depth_obstacle_counts(depth, depth, 10.0, 10.0, 0.0, 0.0, HEIGHT, spec) == nothing
    assert depth_obstacle_counts(depth, depth, 10.0, 10.0, 0.0, 0.0, HEIGHT)['10m'] == \
        {'tp_truth': 1, 'truth': 1, 'tp_pred': 1, 'pred': 1}
    assert one_line_error(depth_obstacle_counts, depth, depth, 10.0, 10.0, 0.0, 0.0, HEIGHT,
                          valid=np.ones((3, 3), bool)) == \
        'valid mask (3, 3) does not match the depth (2, 2)'
