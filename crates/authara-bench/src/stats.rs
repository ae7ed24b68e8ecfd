//! Medians and spreads across repeated runs (`--runs N`).

use serde::Serialize;

/// The smallest and the largest value across runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub min: f64,
    pub max: f64,
}

/// Median, minimum and maximum of a set of values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    /// The min–max part.
    pub fn spread(self) -> Spread {
        Spread {
            min: self.min,
            max: self.max,
        }
    }
}

/// Median (the mean of the two middle values for an even count), minimum and maximum;
/// `None` for no values.
pub fn summarize(values: impl IntoIterator<Item = f64>) -> Option<Summary> {
    let mut v: Vec<f64> = values.into_iter().collect();
    v.sort_by(f64::total_cmp);
    let min = *v.first()?;
    let max = *v.last()?;
    // The two middle values; one and the same for an odd count.
    let lower = *v.get((v.len() - 1) / 2)?;
    let upper = *v.get(v.len() / 2)?;
    Some(Summary {
        median: (lower + upper) / 2.0,
        min,
        max,
    })
}

/// [`summarize`] over the values `f` finds (runs where a figure is missing are left out).
pub fn summarize_by<T>(items: &[T], f: impl Fn(&T) -> Option<f64>) -> Option<Summary> {
    summarize(items.iter().filter_map(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_odd_count_is_the_middle_value() {
        let s = summarize([0.83, 1.04, 0.91]).unwrap();
        assert_eq!(s.median, 0.91);
        assert_eq!(
            s.spread(),
            Spread {
                min: 0.83,
                max: 1.04
            }
        );
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        let s = summarize([4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!(s.median, 2.5);
        assert_eq!((s.min, s.max), (1.0, 4.0));
    }

    #[test]
    fn one_value_is_its_own_median_and_spread() {
        let s = summarize([0.7]).unwrap();
        assert_eq!(
            s,
            Summary {
                median: 0.7,
                min: 0.7,
                max: 0.7
            }
        );
    }

    #[test]
    fn no_values_give_no_summary() {
        assert_eq!(summarize([]), None);
        assert_eq!(summarize_by(&[None::<f64>, None], |v| *v), None);
    }

    #[test]
    fn an_outlier_moves_the_spread_not_the_median() {
        let s = summarize([100.0, 101.0, 99.0, 102.0, 20.0]).unwrap();
        assert_eq!(s.median, 100.0);
        assert_eq!((s.min, s.max), (20.0, 102.0));
    }

    #[test]
    fn missing_figures_are_left_out() {
        let s = summarize_by(&[Some(1.0), None, Some(3.0)], |v| *v).unwrap();
        assert_eq!(s.median, 2.0);
        assert_eq!((s.min, s.max), (1.0, 3.0));
    }
}
